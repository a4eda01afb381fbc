"""Speech recognition with Whisper (faster-whisper, CTranslate2): the recogniser a maintainer
can install for Indonesian (Vosk publishes no Indonesian model).

Whisper is not streaming: it transcribes a whole utterance. The stream here keeps the
VAD's audio and transcribes it when asked. `transcribe_now()` is how the pipeline hides
that cost: it is called as soon as the speaker falls silent (before `silence_ms` is over),
and `finish()` reuses that transcript when no voiced audio came after it, so the end-of-
speech wait and the decoding overlap. There are no partial transcripts while speaking.

Same interface as `firmware.voice.asr.Recognizer`: `load()`, `stream()`, `status()`,
`with_vocabulary()`, `name`, `mode`, `load_s`, `rss_mb`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from firmware.errors import ModelNotInstalled, VoiceError
from firmware.procinfo import cpu_count, rss_mb
from firmware.voice import memory
from firmware.voice.asr import Transcript, Word

log = logging.getLogger(__name__)

# Files of a CTranslate2 Whisper conversion (Systran's faster-whisper-* repositories).
REQUIRED_FILES = ("config.json", "model.bin", "tokenizer.json")


def find_whisper_dir(path: Path) -> Path:
    """The folder holding a CTranslate2 Whisper model, `path` itself or one level down.

    Raises ModelNotInstalled when none is there.
    """
    path = Path(path)
    if path.is_dir():
        for cand in (path, *sorted(p for p in path.iterdir() if p.is_dir())):
            if all((cand / f).is_file() for f in REQUIRED_FILES):
                return cand
    raise ModelNotInstalled(f"{path}: not a CTranslate2 Whisper model folder "
                            f"(needs {', '.join(REQUIRED_FILES)})")


def encoder_window_s(audio_s: float) -> int:
    """Seconds of audio the encoder is run on for an utterance of `audio_s` seconds.

    Whisper pads every input to 30 s and the encoder's cost follows that window, not the
    speech; a kiosk question lasts 2-6 s, so the window is the utterance rounded up plus
    one second (at least 3 s, at most Whisper's 30 s). On this machine that decodes a 2 s
    question 2-3 times faster with the same transcripts on the tests' questions.
    """
    return int(min(30, max(3, math.ceil(audio_s) + 1)))


def max_new_tokens(audio_s: float) -> int:
    """Most tokens worth decoding from `audio_s` seconds of speech.

    A fast speaker says about 4 words a second and Whisper's tokens run 2-3 to an Indonesian
    word, so 12 a second plus 10 is room for any real question. Without a bound, Whisper
    can fall into a repetition loop on unclear speech ("maka ma-maka ma-maka ...") and
    decode its full 448 tokens: seconds of CPU on a Pi while the resident waits.
    """
    return int(min(440, 10 + math.ceil(12 * audio_s)))


def collapse_repeats(text: str, longest: int = 4, keep: int = 3) -> str:
    """`text` with every run of a repeated 1..`longest`-word group cut to `keep` copies.

    Whisper's repetition loops ("maka ma-maka ma-maka ...") become a few words the brain
    will not mistake for a question, while a resident's own repetition survives with its
    meaning ("tolong tolong tolong tolong" -> "tolong tolong tolong"): a loop is never a
    reason to drop what may be an emergency.
    """
    words = text.split()
    for n in range(1, longest + 1):
        out: list[str] = []
        i = 0
        while i < len(words):
            group = [w.lower() for w in words[i:i + n]]
            copies = 1
            while len(group) == n and [w.lower() for w in words[i + copies * n:i + (copies + 1) * n]] == group:
                copies += 1
            if copies > keep:
                out += words[i:i + keep * n]
                i += copies * n
            else:
                out.append(words[i])
                i += 1
        words = out
    return " ".join(words)


class WhisperRecognizer:
    """A faster-whisper model loaded once; one `WhisperStream` per utterance."""

    engine = "whisper"

    def __init__(self, model_path: Path, rate_hz: int = 16000, *, language: str = "id",
                 threads: int = 0, beam_size: int = 1, compute_type: str = "int8",
                 vocabulary: Iterable[str] | None = None) -> None:
        self.model_path = Path(model_path)
        self.rate_hz = rate_hz
        self.language = language
        self.threads = threads
        self.beam_size = beam_size
        self.compute_type = compute_type
        self.vocabulary = sorted({w for w in (vocabulary or ()) if w})
        self.model = None
        self.model_dir: Path | None = None
        self.mode = "not loaded"
        self.load_s = 0.0
        self.rss_mb = 0.0
        # CTranslate2 runs one translation at a time per model well; the kiosk asks one
        # question at a time, but the bench and warm-up threads must not interleave.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        path = self.model_dir or self.model_path
        return path.parent.name if path.name in ("data", "model") else path.name

    def load(self) -> WhisperRecognizer:
        """Load the model once (about 1 s and 150-250 MB for base); ModelNotInstalled if absent."""
        if not self.model_path.exists():
            raise ModelNotInstalled(f"Whisper model not found at {self.model_path}")
        self.model_dir = find_whisper_dir(self.model_path)
        # lazy: CTranslate2 loads only when the unit's recogniser is Whisper
        from faster_whisper import WhisperModel

        before, started = rss_mb(), time.monotonic()
        # CTranslate2's default of 4 threads oversubscribes a 2-core machine; one per core.
        threads = self.threads or min(4, cpu_count())
        self.model = WhisperModel(str(self.model_dir), device="cpu", compute_type=self.compute_type,
                                  cpu_threads=threads, num_workers=1)
        self.load_s = time.monotonic() - started
        self.rss_mb = max(0.0, rss_mb() - before)
        self.mode = (f"whisper {self.language}, beam {self.beam_size}, {self.compute_type}, "
                     "utterance at a time (no partials)")
        log.info("whisper model %s loaded in %.1f s (+%.0f MB)", self.model_dir, self.load_s, self.rss_mb)
        return self

    def with_vocabulary(self, vocabulary: Iterable[str] | None, grammar_bias: bool = True) -> WhisperRecognizer:
        """The same loaded model; Whisper takes no grammar, so the vocabulary is only kept."""
        if self.model is None:
            raise VoiceError("asr-not-loaded", "load() the model first")
        self.vocabulary = sorted({w for w in (vocabulary or ()) if w})
        return self

    def stream(self) -> WhisperStream:
        if self.model is None:
            raise VoiceError("asr-not-loaded", "the Whisper model is not loaded")
        return WhisperStream(self)

    def transcribe(self, pcm: bytes) -> Transcript:
        """int16 mono PCM at `rate_hz` → Transcript (confidence = exp(mean log-probability))."""
        if self.model is None:
            raise VoiceError("asr-not-loaded", "the Whisper model is not loaded")
        if not pcm:
            return Transcript("")
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        with self._lock:
            segments, _info = self.model.transcribe(
                audio, language=self.language, beam_size=self.beam_size, vad_filter=False,
                without_timestamps=True, condition_on_previous_text=False, temperature=0.0,
                chunk_length=encoder_window_s(len(audio) / self.rate_hz),
                max_new_tokens=max_new_tokens(len(audio) / self.rate_hz),
                # faster-whisper's own no-speech skip (0.6) dropped whole questions of the
                # espeak-ng test set (5 of 28); the VAD already passes only speech, and the
                # stricter check below still drops what Whisper hears in noise.
                no_speech_threshold=None)
            segments = list(segments)
        del audio
        memory.release()  # the decode's buffers are free now: give their pages back
        words: list[Word] = []
        texts: list[str] = []
        for seg in segments:
            if seg.no_speech_prob > 0.8 and seg.avg_logprob < -1.0:
                continue  # Whisper "hears" words in noise; these are the tell-tale scores
            text = seg.text.strip()
            if not text:
                continue
            short = collapse_repeats(text)
            if short != text:
                log.info("whisper: cut a repetition (%d -> %d characters)", len(text), len(short))
                text = short
            texts.append(text)
            conf = math.exp(max(-10.0, seg.avg_logprob))
            words += [Word(w, conf, seg.start, seg.end) for w in text.split()]
        return Transcript(" ".join(texts), words)

    def status(self) -> dict:
        return {"engine": self.engine, "name": self.name,
                "path": str(self.model_dir or self.model_path), "mode": self.mode,
                "language": self.language, "load_s": round(self.load_s, 2),
                "rss_mb": round(self.rss_mb)}


class WhisperStream:
    """One utterance: audio is kept; `transcribe_now()` decodes what is there so far."""

    def __init__(self, recognizer: WhisperRecognizer) -> None:
        self.recognizer = recognizer
        self._pcm = bytearray()
        self.audio_s = 0.0
        self._early: tuple[int, Transcript] | None = None  # (bytes decoded, transcript)
        self.decodes = 0

    def accept(self, pcm: bytes, rate_hz: int = 16000) -> str | None:
        """Keep the audio; Whisper gives no partial text, so always None."""
        self._pcm += pcm
        self.audio_s += len(pcm) / 2 / rate_hz
        return None

    def transcribe_now(self) -> Transcript:
        """Decode the audio so far (seconds of CPU); `finish()` may reuse it."""
        size = len(self._pcm)
        transcript = self.recognizer.transcribe(bytes(self._pcm))
        self.decodes += 1
        self._early = (size, transcript)
        return transcript

    def forget_early(self) -> None:
        """Speech went on after `transcribe_now()`: that transcript no longer stands."""
        self._early = None

    def finish(self, reuse_early: bool = True) -> Transcript:
        """The utterance's transcript; the early one when only silence came after it."""
        if reuse_early and self._early is not None:
            return self._early[1]
        transcript = self.recognizer.transcribe(bytes(self._pcm))
        self.decodes += 1
        return transcript
