"""Test and benchmark speech: espeak-ng text → 16-bit mono PCM at the wanted rate."""

from __future__ import annotations

import io
import subprocess
import wave

from firmware.audio.resample import resample
from firmware.voice.tts import fix_stream_wav


def espeak_pcm(text: str, voice: str = "id", rate_hz: int = 16000, words_per_minute: int = 0) -> bytes:
    speed = ["-s", str(words_per_minute)] if words_per_minute else []
    wav = subprocess.run(["espeak-ng", "-v", voice, *speed, "--stdout", text], capture_output=True,
                         check=True, timeout=60).stdout
    with wave.open(io.BytesIO(fix_stream_wav(wav))) as w:
        pcm, src = w.readframes(w.getnframes()), w.getframerate()
    return resample(pcm, src, rate_hz)
