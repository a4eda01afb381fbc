"""The intent model's training set: labelled questions from the KB and the data files.

Labels: a KB entry id; `refuse:<category>` (examples in safety.yaml); `escalate:<category>`
(examples in emergency.yaml); `none` (questions a police kiosk cannot answer, intents.yaml).
Every question is normalised, and `VARIANTS` generated spellings of it are added
(assistant/augment.py). Pure: the data comes in parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from assistant.augment import variants
from assistant.errors import KbError
from assistant.kb import KnowledgeBase

VARIANTS = 2  # per question; more adds little on cross-validation and slows training
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


def training_set(pairs: Iterable[tuple[str, str]], normalise: Callable[[str], str],
                 is_content: Callable[[str], bool], n_variants: int = VARIANTS,
                 ) -> list[tuple[str, str]]:
    """Normalised (text, label) pairs with generated variants, without duplicates."""
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    for raw, label in pairs:
        base = raw.lower()
        for text in (base, *variants(base, n_variants, content=is_content)):
            normalised = normalise(text)
            if normalised and (normalised, label) not in seen:
                seen.add((normalised, label))
                out.append((normalised, label))
    return out
