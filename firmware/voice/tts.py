"""Speech synthesis: a Piper voice, or espeak-ng when no Piper voice is installed.

Both speak sentence by sentence so playback can start before the whole answer exists.
`voice_id` names the exact voice (engine, name, content digest): the speech cache is keyed
by it, so replacing a voice file invalidates what was cached with the old one.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from firmware.errors import ModelNotInstalled, VoiceError
from firmware.procinfo import rss_mb
from firmware.voice import memory
from firmware.voice.textnorm import speakable, speech_units

log = logging.getLogger(__name__)


class Synthesizer(Protocol):
    engine: str  # "piper" | "espeak-ng"
    name: str
    voice_id: str
    rate_hz: int

    def synthesize(self, text: str, lang: str = "id") -> Iterator[bytes]:
        """int16 mono audio at `rate_hz`, one block per sentence."""
        ...

    def status(self) -> dict: ...


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# onnxruntime's CPU memory arena for Piper (see PiperSynth.load); off on a unit.
ORT_CPU_ARENA = False


class PiperSynth:
    """A Piper voice (.onnx + .onnx.json) run by onnxruntime."""

    engine = "piper"

    def __init__(self, model_path: Path, threads: int = 0) -> None:
        self.model_path = Path(model_path)
        self.config_path = Path(f"{self.model_path}.json")
        self.threads = threads
        self.name = self.model_path.name.removesuffix(".onnx")
        self.voice = None
        self.voice_id = ""
        self.rate_hz = 0
        self.load_s = 0.0
        self.rss_mb = 0.0

    def load(self) -> PiperSynth:
        """Load the voice; ModelNotInstalled when its files are missing."""
        if not self.model_path.is_file() or not self.config_path.is_file():
            raise ModelNotInstalled(f"Piper voice not found: {self.model_path} (+ .json)")
        # lazy: onnxruntime and Piper load only when a Piper voice is loaded (the kiosk extra)
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        before, started = rss_mb(), time.monotonic()
        # PiperVoice.load takes no session options, so the session is made here (once: a
        # second session made after load() would double the load's memory peak).
        opts = onnxruntime.SessionOptions()
        if self.threads:  # a Pi 4 with 4 threads runs ~2x faster than 1
            opts.intra_op_num_threads = self.threads
        # onnxruntime's CPU arena keeps the largest activations it ever needed (a long
        # sentence's decoder output) for the life of the process: on a 4 GB unit that is
        # memory the Whisper decode needs next. Without it the tensors are freed per run.
        opts.enable_cpu_mem_arena = ORT_CPU_ARENA
        config = PiperConfig.from_dict(json.loads(self.config_path.read_text(encoding="utf-8")))
        voice = PiperVoice(config=config, download_dir=Path.cwd(),
                           session=onnxruntime.InferenceSession(str(self.model_path), sess_options=opts,
                                                                providers=["CPUExecutionProvider"]))
        self.voice = voice
        self.rate_hz = int(voice.config.sample_rate)
        digest = hashlib.sha256()
        digest.update(file_digest(self.model_path).encode())
        digest.update(self.config_path.read_bytes())
        self.voice_id = f"piper:{self.name}:{digest.hexdigest()[:16]}"
        self.load_s = time.monotonic() - started
        self.rss_mb = max(0.0, rss_mb() - before)
        log.info("piper voice %s loaded in %.2f s (%d Hz)", self.name, self.load_s, self.rate_hz)
        return self

    def synthesize(self, text: str, lang: str = "id") -> Iterator[bytes]:
        if self.voice is None:
            raise VoiceError("tts-not-loaded", "the Piper voice is not loaded")
        for sentence in speech_units(speakable(text, lang)):
            pcm = b"".join(chunk.audio_int16_bytes for chunk in self.voice.synthesize(sentence))
            memory.release()  # the sentence's activations are free now: give their pages back
            if pcm:
                yield pcm

    def status(self) -> dict:
        return {"engine": self.engine, "name": self.name, "voice_id": self.voice_id,
                "rate_hz": self.rate_hz, "load_s": round(self.load_s, 2),
                "rss_mb": round(self.rss_mb), "fallback": False}


class EspeakSynth:
    """espeak-ng as a separate process: robotic but always there, and it speaks Indonesian."""

    engine = "espeak-ng"

    def __init__(self, voice: str = "id", binary: str = "espeak-ng") -> None:
        self.binary = shutil.which(binary) or binary
        self.voice_name = voice
        self.name = f"espeak-ng -v {voice}"
        self.rate_hz = 22050
        self.voice_id = ""

    def load(self) -> EspeakSynth:
        if not shutil.which(self.binary):
            raise ModelNotInstalled("espeak-ng is not installed (apt-get install espeak-ng)")
        version = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
        probe = self._wav("a")
        with wave.open(io.BytesIO(probe)) as w:
            self.rate_hz = w.getframerate()
        self.voice_id = f"espeak-ng:{self.voice_name}:{hashlib.sha256(version.encode()).hexdigest()[:12]}"
        return self

    def _wav(self, text: str, voice: str = "") -> bytes:
        try:
            out = subprocess.run([self.binary, "-v", voice or self.voice_name, "--stdout", text],
                                 capture_output=True, timeout=60, check=True)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise VoiceError("tts-failed", f"espeak-ng failed: {exc}") from exc
        return out.stdout

    def synthesize(self, text: str, lang: str = "id") -> Iterator[bytes]:
        # espeak-ng has an English voice too: English answers are not read with Indonesian rules.
        voice = "en" if lang == "en" else self.voice_name
        for sentence in speech_units(speakable(text, lang)):
            data = self._wav(sentence, voice)
            with wave.open(io.BytesIO(fix_stream_wav(data))) as w:
                pcm = w.readframes(w.getnframes())
            if pcm:
                yield pcm

    def status(self) -> dict:
        return {"engine": self.engine, "name": self.name, "voice_id": self.voice_id,
                "rate_hz": self.rate_hz, "load_s": 0.0, "rss_mb": 0, "fallback": True}


def fix_stream_wav(data: bytes) -> bytes:
    """espeak-ng --stdout writes 0xFFFFFFFF sizes (it cannot seek); patch them for `wave`."""
    if len(data) < 44 or data[:4] != b"RIFF":
        return data
    fixed = bytearray(data)
    fixed[4:8] = (len(data) - 8).to_bytes(4, "little")
    pos = 12
    while pos + 8 <= len(fixed):
        cid, size = bytes(fixed[pos:pos + 4]), int.from_bytes(fixed[pos + 4:pos + 8], "little")
        if cid == b"data":
            fixed[pos + 4:pos + 8] = (len(fixed) - pos - 8).to_bytes(4, "little")
            break
        pos += 8 + size
    return bytes(fixed)


def load_synthesizer(voice_path: Path | None, *, fallback: str = "espeak-ng",
                     espeak_voice: str = "id", threads: int = 0) -> Synthesizer | None:
    """The Piper voice when installed, else espeak-ng (logged loudly), else None."""
    if voice_path is not None:
        try:
            return PiperSynth(voice_path, threads).load()
        except ModelNotInstalled as exc:
            log.warning("%s", exc)
    else:
        log.warning("no Piper voice configured")
    if fallback == "espeak-ng":
        synth = EspeakSynth(espeak_voice).load()
        log.warning("speaking with the FALLBACK voice %s: install a Piper voice with "
                    "`posko models fetch` or `posko models install PATH`", synth.name)
        return synth
    log.warning("no voice: answers are shown on screen only")
    return None


class BilingualSynth:
    """The Indonesian voice plus a Piper voice for English answers (the kiosk's English mode).

    Each language is spoken by its own voice, at that voice's rate (`rate_for(lang)`); the
    voice id names both, so the speech cache is rebuilt when either changes.
    """

    def __init__(self, main: Synthesizer, english: Synthesizer) -> None:
        self.main, self.english = main, english
        self.engine = main.engine
        self.name = main.name
        self.rate_hz = main.rate_hz
        self.voice_id = f"{main.voice_id}+en={english.voice_id}"

    def voice_for(self, lang: str) -> Synthesizer:
        return self.english if lang == "en" else self.main

    def rate_for(self, lang: str) -> int:
        """Sample rate of the audio `synthesize(text, lang)` yields, in Hz."""
        return self.voice_for(lang).rate_hz

    def synthesize(self, text: str, lang: str = "id") -> Iterator[bytes]:
        return self.voice_for(lang).synthesize(text, lang)

    def status(self) -> dict:
        return {**self.main.status(), "voice_id": self.voice_id, "english": self.english.status()}


def rate_for(synth, lang: str) -> int:
    """The rate of `synth`'s audio in `lang` (a single voice has one rate), in Hz."""
    pick = getattr(synth, "rate_for", None)
    return pick(lang) if pick is not None else synth.rate_hz
