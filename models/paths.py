"""Where the configured speech models are on this unit (no model is loaded here)."""

from __future__ import annotations

from pathlib import Path

from posko.config import Settings


def models_dir(settings: Settings) -> Path:
    return settings.state_dir / "models"


def _looks_like_path(value: str) -> bool:
    return "/" in value or value.startswith((".", "~"))


def asr_model_path(settings: Settings) -> Path | None:
    """The Vosk model folder named by `[voice] asr_model` (a manifest name or a path)."""
    value = settings.voice.asr_model.strip()
    if not value:
        return None
    return settings.resolve(value) if _looks_like_path(value) else models_dir(settings) / value


def whisper_model_path(settings: Settings) -> Path | None:
    """The Whisper (CTranslate2) folder named by `[voice] whisper_model` (a name or a path)."""
    value = settings.voice.whisper_model.strip()
    if not value:
        return None
    return settings.resolve(value) if _looks_like_path(value) else models_dir(settings) / value


def tts_voice_path(settings: Settings, value: str | None = None) -> Path | None:
    """The Piper .onnx file named by `[voice] tts_voice` (or `value`, e.g. the English
    voice), or None when none is named."""
    value = (settings.voice.tts_voice if value is None else value).strip()
    if not value:
        return None
    if _looks_like_path(value) or value.endswith(".onnx"):
        return settings.resolve(value)
    folder = models_dir(settings) / value
    exact = folder / f"{value}.onnx"
    if exact.is_file():
        return exact
    found = sorted(folder.glob("*.onnx")) if folder.is_dir() else []
    return found[0] if found else exact


def cache_dir(settings: Settings) -> Path:
    value = settings.voice.cache_dir.strip()
    return settings.resolve(value) if value else settings.state_dir / "tts-cache"
