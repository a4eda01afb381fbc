"""How well spoken questions reach the right answer: word error rate of the recogniser and
the share of questions whose transcript leads the brain to the same answer as the typed
question (ASR → brain). Used by `bench/voice.py` and the end-to-end voice tests.

The questions are spoken by espeak-ng: robotic speech that no recogniser was trained on,
so the figures are a FLOOR for the recogniser path, not what residents will see.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Levenshtein

_WORD = re.compile(r"[0-9a-z]+")


def words(text: str) -> list[str]:
    """Lower-case words without punctuation ("SIM-C?" → ["sim", "c"])."""
    return _WORD.findall(text.lower())


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference word count)."""
    ref, hyp = words(reference), words(hypothesis)
    # rapidfuzz's Levenshtein works on any sequences of hashables: here, word lists.
    return Levenshtein.distance(ref, hyp), len(ref)


def word_error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """Corpus WER over (reference, hypothesis) pairs: total errors / total reference words."""
    errors = total = 0
    for ref, hyp in pairs:
        e, n = word_errors(ref, hyp)
        errors, total = errors + e, total + n
    return errors / total if total else 0.0


def outcome(reply: Any) -> tuple[str, str | None]:
    """What an answer amounts to for a resident: (action, KB entry)."""
    return str(getattr(reply, "action", "")), getattr(reply, "entry", None)


@dataclass
class Trial:
    question: str
    entry: str
    transcript: str
    errors: int
    ref_words: int
    typed: tuple[str, str | None]
    spoken: tuple[str, str | None]
    decode_s: float

    @property
    def reached(self) -> bool:
        """The spoken question got the answer the typed one gets (and that is an answer)."""
        return self.spoken == self.typed and self.typed[0] in ("answer", "escalate")


def kb_questions(brain, every: int = 4, limit: int = 0) -> list[tuple[str, str]]:
    """(question, entry id): the first question of every `every`-th entry, by id."""
    entries = sorted(brain.kb.entries.values(), key=lambda e: e.id)
    picked = [(e.questions[0], e.id) for e in entries[::every] if e.questions]
    return picked[:limit] if limit else picked


def run_accuracy(recognizer, brain, questions: list[tuple[str, str]],
                 speak: Callable[[str], bytes]) -> dict[str, Any]:
    """Speak each question (`speak(text)` → 16 kHz int16), transcribe it, ask the brain."""
    trials: list[Trial] = []
    for question, entry in questions:
        pcm = speak(question)
        stream = recognizer.stream()
        started = time.perf_counter()
        for i in range(0, len(pcm), 960):
            stream.accept(pcm[i:i + 960])
        transcript = stream.finish().text
        decode_s = time.perf_counter() - started
        errors, n = word_errors(question, transcript)
        trials.append(Trial(question, entry, transcript, errors, n,
                            outcome(brain.ask(question)), outcome(brain.ask(transcript)),
                            decode_s))
    ref_words = sum(t.ref_words for t in trials)
    typed_ok = [t for t in trials if t.typed[0] in ("answer", "escalate")]
    return {
        "questions": len(trials),
        "wer": round(sum(t.errors for t in trials) / ref_words, 3) if ref_words else 0.0,
        "entry_accuracy_by_voice": round(sum(t.reached for t in trials) / len(typed_ok), 3)
        if typed_ok else 0.0,
        "typed_answered": len(typed_ok),
        "typed_own_entry": sum(t.typed[1] == t.entry for t in trials),
        "decode_s_mean": round(sum(t.decode_s for t in trials) / len(trials), 2) if trials else 0.0,
        "speech": "espeak-ng -v id (robotic): a floor, not a field figure",
        "trials": [{"q": t.question, "heard": t.transcript, "entry": t.entry,
                    "typed": t.typed[1] or t.typed[0], "spoken": t.spoken[1] or t.spoken[0],
                    "ok": t.reached} for t in trials],
    }
