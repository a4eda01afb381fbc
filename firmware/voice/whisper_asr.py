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


LONGEST_WINDOW_S = 29.0  # longer utterances are decoded 30 s at a time (`_decode_long`)


def encoder_window_s(audio_s: float) -> int:
    """Seconds of audio the encoder is run on for an utterance of `audio_s` seconds.

    Whisper pads every input to 30 s and the encoder's cost follows that window, not the
    speech; a kiosk question lasts 2-6 s, so the window is the utterance rounded up plus
    one second (at least 3 s, at most Whisper's 30 s). `WhisperRecognizer._decode` encodes
    only this window (faster-whisper's own `transcribe` pads to 30 s whatever it is told).
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


def cut_echo(text: str) -> str:
    """`text` without Whisper's echo of itself: on an encoder window cut to the utterance,
    the decoder sometimes reads the question again after its end ("Apa fungsi tombol darurat
    di kiosk ini? Apa fungsi tombol darurat di ki"). After the first three words, the
    earliest tail of two or more words that says nothing new (every word already said, the
    last one perhaps cut short) is dropped; a tail with any new word stays ("Di sini. Di sini
    ada api" keeps "ada api"), and so do short cries ("tolong tolong tolong")."""
    words = text.split()
    key = [w.lower().strip(".,?!") for w in words]
    for k in range(3, len(words) - 1):
        said, tail = set(key[:k]), key[k:]
        if all(w in said or (i == len(tail) - 1 and any(s.startswith(w) for s in said))
               for i, w in enumerate(tail)):
            return " ".join(words[:k]).rstrip(",")
    return text


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
        self._tokenizer = None  # faster-whisper's Tokenizer, prompt and suppressed tokens,
        self._prompt: list[int] = []  # made once at load()
        self._suppress: list[int] | None = None

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
        # lazy: as above (faster-whisper's tokenizer and its list of non-speech tokens)
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self._tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual,
                                    task="transcribe", language=self.language)
        self._prompt = self.model.get_prompt(self._tokenizer, [], without_timestamps=True)
        self._suppress = get_suppressed_tokens(self._tokenizer, [-1])
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
            text, avg_logprob, no_speech_prob = self._decode(audio)
        del audio
        memory.release()  # the decode's buffers are free now: give their pages back
        if no_speech_prob > 0.8 and avg_logprob < -1.0:
            return Transcript("")  # Whisper "hears" words in noise; these are the tell-tale scores
        short = collapse_repeats(cut_echo(text))
        if short != text:
            log.info("whisper: cut a repetition (%d -> %d characters)", len(text), len(short))
            text = short
        if not text:
            return Transcript("")
        conf = math.exp(max(-10.0, avg_logprob))
        duration = len(pcm) / 2 / self.rate_hz
        return Transcript(text, [Word(w, conf, 0.0, duration) for w in text.split()])

    def _decode(self, audio: np.ndarray) -> tuple[str, float, float]:
        """One greedy (or beam) decode of a whole utterance on an encoder window that fits it:
        (text, average log-probability, no-speech probability).

        Why not `WhisperModel.transcribe`: faster-whisper 1.2 pads every segment's features to
        Whisper's 30 s (3,000 frames) before the encoder whatever `chunk_length` says, and the
        encoder's cost follows that window: 0.5-0.8 s of a 0.6-0.8 s decode of a 2 s question
        on this machine. Encoding only the utterance plus a second (`encoder_window_s`) takes
        about 35 ms and gave the same word error rate on the espeak-ng questions here (0.69 vs
        0.70 on ten, docs/voice.md), so the pieces faster-whisper offers (its features, encoder,
        CTranslate2 generate and tokenizer, the same options and score as its own decode) are
        called here directly. No timestamps, no previous-text prompt, temperature 0.
        """
        model = self.model
        duration_s = len(audio) / self.rate_hz
        if duration_s > LONGEST_WINDOW_S:
            return self._decode_long(audio)
        window = encoder_window_s(duration_s)
        features = model.feature_extractor(audio, chunk_length=window)
        features = features[:, : window * model.frames_per_second]
        encoded = model.encode(features)
        result = model.model.generate(
            encoded, [self._prompt], beam_size=self.beam_size,
            max_length=len(self._prompt) + max_new_tokens(duration_s),
            return_scores=True, return_no_speech_prob=True, suppress_blank=True,
            suppress_tokens=self._suppress)[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        avg_logprob = result.scores[0] * len(result.sequences_ids[0]) / (len(result.sequences_ids[0]) + 1)
        return self._tokenizer.decode(tokens).strip(), avg_logprob, result.no_speech_prob

    def _decode_long(self, audio: np.ndarray) -> tuple[str, float, float]:
        """An utterance longer than one window (`voice.max_utterance_s` allows up to 60 s):
        faster-whisper's own `transcribe`, which walks it 30 s at a time, so nothing past the
        first window is lost (slower; a kiosk question is a few seconds)."""
        duration_s = len(audio) / self.rate_hz
        segments, _info = self.model.transcribe(
            audio, language=self.language, beam_size=self.beam_size, vad_filter=False,
            without_timestamps=True, condition_on_previous_text=False, temperature=0.0,
            max_new_tokens=max_new_tokens(min(duration_s, 30.0)), no_speech_threshold=None)
        kept = [seg for seg in segments if seg.text.strip()
                and not (seg.no_speech_prob > 0.8 and seg.avg_logprob < -1.0)]
        if not kept:
            return "", 0.0, 0.0
        text = " ".join(seg.text.strip() for seg in kept)
        return text, sum(seg.avg_logprob for seg in kept) / len(kept), 0.0


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
