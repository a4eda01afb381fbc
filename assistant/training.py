"""The intent model's training set: labelled questions from the KB and the data files.

Labels: a KB entry id; `refuse:<category>` (examples in safety.yaml); `escalate:<category>`
(examples in emergency.yaml); `none` (questions a police kiosk cannot answer, intents.yaml).
Every question is normalised, and `VARIANTS` generated spellings of it are added
(assistant/augment.py). Pure: the data comes in parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from assistant.augment import framed, variants
from assistant.errors import KbError
from assistant.kb import KnowledgeBase

VARIANTS = 2  # per question; more adds little on cross-validation and slows training
FRAMED = 4  # framed copies of each example of a kind in intents.yaml `frames` (ninth round: 2 -> 4, held out)
REFUSE = "refuse:"
ESCALATE = "escalate:"
NONE = "none"


def labelled_questions(kb: KnowledgeBase, safety: dict[str, Any], emergency: dict[str, Any],
                       intents: dict[str, Any]) -> list[tuple[str, str]]:
    """(raw question, label) pairs, before normalisation. Raises KbError on malformed data."""
    out: list[tuple[str, str]] = []
    for entry in kb.entries.values():
        for text in (*entry.questions, entry.title["id"], entry.title.get("en", "")):
            if text:
                out.append((text, entry.id))
    for source, data, prefix in (("safety.yaml", safety, REFUSE),
                                 ("emergency.yaml", emergency, ESCALATE)):
        for name, examples in (data.get("examples") or {}).items():
            if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
                raise KbError([f"{source}: examples.{name}: must be a list of sentences"])
            out.extend((e, prefix + str(name)) for e in examples)
    none = intents.get("none") or []
    if not isinstance(none, list) or not all(isinstance(e, str) for e in none):
        raise KbError(["intents.yaml: none: must be a list of sentences"])
    out.extend((e, NONE) for e in none)
    return out


def head_labels(safety: dict[str, Any], emergency: dict[str, Any]) -> dict[str, set[str]]:
    """The "yes" labels of the intent model's binary heads (intent.HEADS): "alarm" is every
    emergency category, "wary" every refusal of help with a crime or of personal data (an
    off-topic question may as well fall back, so the irrelevant kinds stay out of it)."""
    return {
        "alarm": {ESCALATE + str(n) for n in (emergency.get("examples") or {})},
        "wary": {REFUSE + str(n) for n, spec in (safety.get("categories") or {}).items()
                 if isinstance(spec, dict) and spec.get("kind") in ("crime", "personal")
                 and n in (safety.get("examples") or {})},
    }


FRAME_KINDS = ("escalate", "refuse", "answer", "none")


def frame_kind(label: str) -> str:
    """The kind of `frames` a label's questions are put into: escalate, refuse, none, or
    answer (a KB entry)."""
    if label.startswith((ESCALATE, REFUSE)):
        return label.split(":", 1)[0]
    return NONE if label == NONE else "answer"


def frames(intents: dict[str, Any]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """intents.yaml `frames`: per kind of label (`FRAME_KINDS`), the words put before and
    after a question. Raises KbError on malformed data."""
    out = {}
    for kind, spec in (intents.get("frames") or {}).items():
        where = f"intents.yaml: frames.{kind}"
        if kind not in FRAME_KINDS or not isinstance(spec, dict):
            raise KbError([f"{where}: a kind is one of {', '.join(FRAME_KINDS)}, "
                           "with before/after lists"])
        sides = []
        for side in ("before", "after"):
            words = spec.get(side) or []
            if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
                raise KbError([f"{where}.{side}: must be a list of words"])
            sides.append(tuple(w.strip() for w in words))
        out[str(kind)] = (sides[0], sides[1])
    return out


def training_set(pairs: Iterable[tuple[str, str]], normalise: Callable[[str], str],
                 is_content: Callable[[str], bool], n_variants: int = VARIANTS,
                 framing: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] | None = None,
                 n_framed: int = FRAMED) -> list[tuple[str, str]]:
    """Normalised (text, label) pairs with generated variants (and, for the kinds of label in
    `framing`, framed copies), without duplicates."""
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    for raw, label in pairs:
        base = raw.lower()
        frame = (framing or {}).get(frame_kind(label))
        extra = framed(base, *frame, n=n_framed) if frame else []
        for text in (base, *variants(base, n_variants, content=is_content), *extra):
            normalised = normalise(text)
            if normalised and (normalised, label) not in seen:
                seen.add((normalised, label))
                out.append((normalised, label))
    return out
