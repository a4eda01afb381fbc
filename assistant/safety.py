"""The safety filter: refuse personal, irrelevant and crime-helping questions (data/safety.yaml).

Pure: takes a normalised question, returns the refusal to give or None.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistant.data import load_data
from assistant.errors import KbError
from assistant.kb import Entry, KnowledgeBase
from assistant.rules import Category, build_categories, pad

# `offtopic` (entertainment, sport): declined like a fallback, not refused (a recipe or a
# match score is no harm, and the resident may ask again); the others are refusals.
KINDS = ("personal", "irrelevant", "crime", "offtopic")


@dataclass(frozen=True)
class Refusal:
    """Which category refused, and the polite texts to say so."""

    category: str
    kind: str
    text: dict[str, str]
    speech: dict[str, str]

    def say(self, lang: str) -> tuple[str, str]:
        """(screen text, spoken text) in `lang`, Indonesian when `lang` is missing."""
        return self.text.get(lang) or self.text["id"], self.speech.get(lang) or self.speech["id"]


class SafetyFilter:
    """Refusal categories in priority order; the first that matches wins."""

    def __init__(self, categories: list[Category], offer: dict[str, str],
                 joiner: dict[str, str] | None = None) -> None:
        self.categories = categories
        self.offer = offer
        self.joiner = joiner or {"id": ", tetapi ", "en": ", but "}

    @classmethod
    def from_data(cls, normalise: Callable[[str], str],
                  data: dict[str, Any] | None = None) -> SafetyFilter:
        data = load_data("safety") if data is None else data
        categories = build_categories(data, "safety.yaml", normalise)
        offer = data.get("offer") or {}
        problems = []
        if not all(isinstance(offer.get(lang), str) for lang in ("id", "en")):
            problems.append("safety.yaml: offer: needs 'id' and 'en' texts")
        joiner = data.get("joiner") or {"id": ", tetapi ", "en": ", but "}
        if not all(isinstance(joiner.get(lang), str) for lang in ("id", "en")):
            problems.append("safety.yaml: joiner: needs 'id' and 'en' texts")
        for category in categories:
            spec = category.data
            if spec.get("kind") not in KINDS:
                problems.append(f"safety.yaml: categories.{category.name}.kind: one of {KINDS}")
            for part in ("text", "speech"):
                texts = spec.get(part) or {}
                if not all(isinstance(texts.get(lang), str) for lang in ("id", "en")):
                    problems.append(f"safety.yaml: categories.{category.name}.{part}: "
                                    "needs 'id' and 'en' texts")
        if problems:
            raise KbError(problems)
        return cls(categories, offer, joiner)

    def check(self, normalised: str) -> Refusal | None:
        padded = pad(normalised)
        for category in self.categories:
            if category.matches(padded):
                return self.refusal_for(category.name)
        return None

    def refusal_for(self, name: str, label: str | None = None) -> Refusal:
        """The refusal of category `name` (KeyError when there is none)."""
        category = next(c for c in self.categories if c.name == name)
        spec = category.data
        # One sentence: what is refused, then what the kiosk can help with instead.
        text = {lang: spec["text"][lang].strip().rstrip(".") + self.joiner[lang]
                + self.offer[lang].strip() for lang in ("id", "en")}
        speech = {lang: spec["speech"][lang].strip() for lang in ("id", "en")}
        return Refusal(label or category.name, spec["kind"], text, speech)

    def unblocked(self, name: str, normalised: str) -> bool:
        """False when the category's own `unless` terms are in the question."""
        category = next((c for c in self.categories if c.name == name), None)
        return category is not None and not category.unless.search(pad(normalised))


def examples_kb(data: dict[str, Any] | None = None) -> KnowledgeBase:
    """The `examples` of safety.yaml as a small KB, one pseudo-entry per category."""
    data = load_data("safety") if data is None else data
    entries = {}
    for name, examples in (data.get("examples") or {}).items():
        if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
            raise KbError([f"safety.yaml: examples.{name}: must be a list of sentences"])
        entries[str(name)] = Entry(
            id=str(name), topic="sapaan", title={"id": str(name), "en": str(name)},
            questions=tuple(examples), answer={"id": "", "en": ""}, speech={"id": "", "en": ""},
            sources=(), checked=dt.date(2026, 1, 1))
    return KnowledgeBase(entries=entries, version="", root="safety.yaml")
