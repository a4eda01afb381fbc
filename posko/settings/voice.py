"""Settings of the voice pipeline: audio devices, VAD, Vosk, Piper."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class VoiceSettings:
    """Microphone, speaker and speech models."""

    input_device: str = setting("default", "Capture device, chosen by (part of) its name.")
    output_device: str = setting("default", "Playback device, chosen by (part of) its name.")
    sample_rate_hz: int = setting(16000, "Capture rate fed to VAD and ASR.", unit="Hz", min=8000, max=48000)
