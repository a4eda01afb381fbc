"""Build the voice parts from the configuration (shared by the agent, `models warm`, bench)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import yaml

from assistant.holder import BrainHolder
from firmware.errors import ModelNotInstalled
from firmware.voice.asr import Recognizer
from firmware.voice.cache import SpeechCache
from firmware.voice.endpointing import EndpointRules
from firmware.voice.tts import BilingualSynth, PiperSynth, Synthesizer, load_synthesizer
from firmware.voice.vad import VadConfig
from firmware.voice.whisper_asr import WhisperRecognizer
from models.paths import asr_model_path, cache_dir, tts_voice_path, whisper_model_path
from posko.config import Settings

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z]+")


def load_brain_from_settings(settings: Settings, *, log_unanswered: bool = True):
    """The assistant brain on the configured knowledge base, loaded in this thread:
    `[assistant] kb_dir`, else the bundle fetched from the hub, else the shipped KB.

    With log_unanswered, spoken questions the brain could not answer go to the configured
    unanswered log (without personal data), so `posko ask --report` sees what residents ask.
    """
    return BrainHolder(settings, log_unanswered=log_unanswered).load_now()


def kb_vocabulary(brain) -> list[str]:
    """Lower-case words of every question, title and spoken answer (the grammar bias)."""
    words: set[str] = set()
    for entry in getattr(brain.kb, "entries", {}).values():
        texts = [*entry.questions, *entry.title.values(), *entry.speech.values()]
        for text in texts:
            words.update(_WORD.findall(text.lower()))
    return sorted(words)


def load_recognizer(settings: Settings, brain=None, model_path: Path | None = None):
    """The configured recogniser (`[voice] asr_engine`), loaded; None (logged) when its
    model is not installed."""
    if settings.voice.asr_engine == "whisper":
        return load_whisper(settings, model_path)
    path = model_path or asr_model_path(settings)
    if path is None:
        log.warning("no speech recognition model configured: typed questions only")
        return None
    vocabulary = kb_vocabulary(brain) if (brain is not None and settings.voice.grammar_bias) else None
    try:
        return Recognizer(path, settings.voice.sample_rate_hz, vocabulary,
                          settings.voice.grammar_bias).load()
    except ModelNotInstalled as exc:
        log.warning("%s: spoken questions are off until a Vosk model is installed "
                    "(`posko models install PATH`); typed questions still work", exc)
        return None


def load_whisper(settings: Settings, model_path: Path | None = None) -> WhisperRecognizer | None:
    """The Whisper model, loaded; None (logged) when it is not installed."""
    path = model_path or whisper_model_path(settings)
    if path is None:
        log.warning("no Whisper model configured: typed questions only")
        return None
    v = settings.voice
    try:
        return WhisperRecognizer(path, v.sample_rate_hz, language=v.whisper_language,
                                 threads=v.whisper_threads).load()
    except ModelNotInstalled as exc:
        log.warning("%s: spoken questions are off until a Whisper model is installed "
                    "(`posko models fetch whisper-base` or `posko models install FOLDER "
                    "--name whisper-base`); typed questions still work", exc)
        return None


def load_tts(settings: Settings) -> Synthesizer | None:
    """The Indonesian voice, with the English one (`tts_voice_en`) for English answers."""
    v = settings.voice
    main = load_synthesizer(tts_voice_path(settings), fallback=v.tts_fallback,
                            espeak_voice=v.espeak_voice, threads=v.tts_threads)
    english = None
    if main is not None and v.tts_voice_en.strip():
        path = tts_voice_path(settings, v.tts_voice_en)
        try:
            english = PiperSynth(path, v.tts_threads).load() if path is not None else None
        except ModelNotInstalled as exc:
            log.warning("%s: English answers are spoken with %s", exc, main.name)
    return BilingualSynth(main, english) if english is not None else main


def build_cache(settings: Settings, brain, synth: Synthesizer | None) -> SpeechCache | None:
    if synth is None or brain is None:
        return None
    return SpeechCache(cache_dir(settings), brain.kb.version, synth.voice_id)


def vad_config(settings: Settings) -> VadConfig:
    v = settings.voice
    return VadConfig(rate_hz=v.sample_rate_hz, frame_ms=30, aggressiveness=v.vad_aggressiveness,
                     silence_ms=v.silence_ms, pre_roll_ms=v.pre_roll_ms,
                     min_speech_ms=v.min_speech_ms, max_utterance_s=v.max_utterance_s,
                     no_speech_timeout_s=v.no_speech_timeout_s)


ENDPOINTING_DATA = Path(__file__).with_name("endpointing.yaml")


def endpoint_rules(settings: Settings | None = None, **overrides) -> EndpointRules:
    """Early endpointing's rules: the word lists of endpointing.yaml and the `[voice]` times."""
    data = yaml.safe_load(ENDPOINTING_DATA.read_text(encoding="utf-8")) or {}
    times = {}
    if settings is not None:
        v = settings.voice
        times = {"silence_ms": v.silence_ms, "early_end_ms": v.early_end_ms,
                 "emergency_end_ms": v.early_end_emergency_ms}
    times.update(overrides)
    return EndpointRules.from_data(data, **times)
