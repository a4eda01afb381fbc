"""Speech recognition with Vosk: one model loaded once, one stream per utterance.

A runtime grammar (bias toward the knowledge base's words) needs a model built with a
lookahead graph (`graph/HCLr.fst` + `graph/Gr.fst`); other models silently ignore it, so
the mode is detected here and logged, never assumed. "[unk]" always stays in a grammar so
words outside it come out as unknown instead of being forced onto a knowledge-base word.
Vosk also drops grammar words it does not know; that is logged by Vosk itself.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from firmware.errors import ModelNotInstalled, VoiceError
from firmware.procinfo import rss_mb

log = logging.getLogger(__name__)

UNK = "[unk]"


@dataclass(frozen=True)
class Word:
    word: str
    confidence: float  # 0..1 as Vosk reports it
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Transcript:
    text: str
    words: list[Word] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        """Mean word confidence; 0 for an empty transcript."""
        return sum(w.confidence for w in self.words) / len(self.words) if self.words else 0.0

    def to_dict(self) -> dict:
        return {"text": self.text, "confidence": round(self.confidence, 3),
                "words": [{"word": w.word, "conf": round(w.confidence, 3),
                           "start": w.start_s, "end": w.end_s} for w in self.words]}


def find_model_dir(path: Path) -> Path:
    """The folder holding a Vosk model (`am/` + `conf/`), `path` itself or one level down."""
    for cand in (path, *sorted(p for p in path.iterdir() if p.is_dir())) if path.is_dir() else ():
        if (cand / "am").is_dir() and (cand / "conf").is_dir():
            return cand
    raise ModelNotInstalled(f"{path}: not a Vosk model folder (no am/ and conf/)")


def supports_grammar(model_dir: Path) -> bool:
    graph = model_dir / "graph"
    return (graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file()


def model_words(model_dir: Path) -> set[str] | None:
    """The model's vocabulary from graph/words.txt, when the model ships it."""
    path = model_dir / "graph" / "words.txt"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8", errors="replace") as fh:
        return {line.split(maxsplit=1)[0] for line in fh if line.strip()}


def parse_result(payload: str) -> Transcript:
    """A Vosk result JSON (with SetWords) as a Transcript."""
    data = json.loads(payload or "{}")
    words = [Word(str(w.get("word", "")), float(w.get("conf", 0.0)),
                  float(w.get("start", 0.0)), float(w.get("end", 0.0)))
             for w in data.get("result", []) if w.get("word") and w.get("word") != UNK]
    return Transcript(text=" ".join(w.word for w in words) if words else
                      " ".join(t for t in str(data.get("text", "")).split() if t != UNK),
                      words=words)


class Recognizer:
    """A Vosk model and the grammar it is biased with."""

    def __init__(self, model_path: Path, rate_hz: int = 16000,
                 vocabulary: Iterable[str] | None = None, grammar_bias: bool = True) -> None:
        self.model_path = Path(model_path)
        self.rate_hz = rate_hz
        self.vocabulary = sorted({w for w in (vocabulary or ()) if w and w != UNK})
        self.grammar_bias = grammar_bias
        self.model = None
        self.model_dir: Path | None = None
        self.mode = "not loaded"
        self.load_s = 0.0
        self.rss_mb = 0.0

    @property
    def name(self) -> str:
        path = self.model_dir or self.model_path
        # Packaged models often sit in a folder called just "model": name the package instead.
        return path.parent.name if path.name == "model" else path.name

    def load(self) -> Recognizer:
        """Load the model once (seconds, hundreds of MB); ModelNotInstalled if it is not there."""
        import vosk  # lazy: Vosk (Kaldi) loads only when the unit's recogniser is Vosk

        if not self.model_path.exists():
            raise ModelNotInstalled(f"Vosk model not found at {self.model_path}")
        self.model_dir = find_model_dir(self.model_path)
        vosk.SetLogLevel(-1)
        before = rss_mb()
        started = time.monotonic()
        self.model = vosk.Model(str(self.model_dir))
        self.load_s = time.monotonic() - started
        self.rss_mb = max(0.0, rss_mb() - before)
        self.mode = self._mode()
        log.info("vosk model %s loaded in %.1f s (+%.0f MB); recognition mode: %s",
                 self.model_dir, self.load_s, self.rss_mb, self.mode)
        return self

    def with_vocabulary(self, vocabulary: Iterable[str] | None, grammar_bias: bool = True) -> Recognizer:
        """Another recognizer on the same loaded model (no second load) with its own grammar."""
        if self.model is None or self.model_dir is None:
            raise VoiceError("asr-not-loaded", "load() the model first")
        other = Recognizer(self.model_path, self.rate_hz, vocabulary, grammar_bias)
        other.model, other.model_dir = self.model, self.model_dir
        other.load_s, other.rss_mb = self.load_s, self.rss_mb
        other.mode = other._mode()
        return other

    def _mode(self) -> str:
        assert self.model_dir is not None
        if not self.grammar_bias:
            return "open (grammar bias off)"
        if not self.vocabulary:
            return "open (no vocabulary to bias toward)"
        if not supports_grammar(self.model_dir):
            return "open (model has no graph/HCLr.fst: runtime grammar unsupported)"
        known = model_words(self.model_dir)
        if known is None:
            # Vosk drops unknown grammar words silently; without words.txt we cannot count them.
            return f"grammar ({len(self.vocabulary)} words + {UNK}; model word list not available)"
        wanted = len(self.vocabulary)
        self.vocabulary = [w for w in self.vocabulary if w in known]
        if not self.vocabulary:
            return f"open (none of the {wanted} knowledge-base words is in the model's vocabulary)"
        return f"grammar ({len(self.vocabulary)} of {wanted} knowledge-base words + {UNK})"

    def stream(self) -> RecognitionStream:
        import vosk  # lazy: Vosk (Kaldi) loads only when the unit's recogniser is Vosk

        if self.model is None:
            raise VoiceError("asr-not-loaded", "the Vosk model is not loaded")
        if self.mode.startswith("grammar"):
            grammar = json.dumps([*self.vocabulary, UNK], ensure_ascii=False)
            rec = vosk.KaldiRecognizer(self.model, self.rate_hz, grammar)
        else:
            rec = vosk.KaldiRecognizer(self.model, self.rate_hz)
        rec.SetWords(True)
        return RecognitionStream(rec)

    def status(self) -> dict:
        return {"name": self.name, "path": str(self.model_dir or self.model_path),
                "mode": self.mode, "load_s": round(self.load_s, 2), "rss_mb": round(self.rss_mb)}


class RecognitionStream:
    """One utterance: feed audio, read partials, finish with a Transcript."""

    def __init__(self, rec) -> None:
        self._rec = rec
        self._final_parts: list[Transcript] = []
        self._last_partial = ""
        self.audio_s = 0.0

    def accept(self, pcm: bytes, rate_hz: int = 16000) -> str | None:
        """Feed int16 audio; returns the new partial text when it changed, else None."""
        self.audio_s += len(pcm) / 2 / rate_hz
        if self._rec.AcceptWaveform(pcm):
            part = parse_result(self._rec.Result())
            if part.text:
                self._final_parts.append(part)
            partial = self._joined()
        else:
            text = json.loads(self._rec.PartialResult() or "{}").get("partial", "")
            text = " ".join(t for t in text.split() if t != UNK)
            partial = " ".join(p for p in (self._joined(), text) if p)
        if partial != self._last_partial:
            self._last_partial = partial
            return partial
        return None

    def _joined(self) -> str:
        return " ".join(p.text for p in self._final_parts)

    def heard_so_far(self) -> str:
        """The text so far (the last partial): what early endpointing judges for Vosk."""
        return self._last_partial

    def finish(self) -> Transcript:
        last = parse_result(self._rec.FinalResult())
        parts = [*self._final_parts, last] if last.text else self._final_parts
        words = [w for p in parts for w in p.words]
        return Transcript(" ".join(p.text for p in parts), words)
