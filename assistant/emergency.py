"""The emergency check: someone in danger now -> escalate (data/emergency.yaml).

Pure: takes the raw and the normalised question, returns the escalation or None. Rules lean
towards escalating; a question about the past or a procedure is held back by `blockers`
unless a `now` word says the danger is present.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistant.data import load_data
from assistant.errors import KbError
from assistant.kb import Entry, KnowledgeBase
from assistant.rules import Category, TermSet, build_categories, pad


@dataclass(frozen=True)
class Escalation:
    """Why the question was escalated, and what to tell the person."""

    category: str
    text: dict[str, str]
    speech: dict[str, str]

    def say(self, lang: str) -> tuple[str, str]:
        return self.text.get(lang) or self.text["id"], self.speech.get(lang) or self.speech["id"]


class EmergencyCheck:
    """Emergency categories plus the "cry for help" forms (alone words, raw patterns)."""

    def __init__(self, categories: list[Category], now: TermSet, severe: TermSet,
                 blockers: TermSet, legal: TermSet, alone: set[str],
                 raw_patterns: list[re.Pattern[str]], common: dict[str, dict[str, str]],
                 stopwords: frozenset[str], second_chance: TermSet | None = None,
                 here: TermSet | None = None, past: TermSet | None = None,
                 hard: TermSet | None = None, statements: TermSet | None = None,
                 asks: TermSet | None = None, favours: TermSet | None = None,
                 errands: TermSet | None = None, compounds: TermSet | None = None) -> None:
        self.categories = categories
        self.now = now
        self.severe = severe
        self.blockers = blockers
        self.legal = legal
        self.alone = alone
        self.raw_patterns = raw_patterns
        self.common = common
        self.stopwords = stopwords
        self.second_chance = second_chance or TermSet(None)
        self.here = here or TermSet(None)
        self.past = past or TermSet(None)
        self.hard = hard or blockers  # the blockers without the `soft` ones
        # "tidak boleh keluar" says what is done to someone; "boleh tidak" asks about a rule
        self.statements = statements or TermSet(None)
        # "sekarang harus bagaimana" asks what to do after a story; "sekarang" there is no
        # sign that the danger is still present
        self.asks = asks or TermSet(None)
        # "tolong kasih tahu ...", "bisa tolong hapus ...": "tolong" asks a favour there
        self.favours = favours or TermSet(None)
        # "TOLONG PAK, SIM saya habis besok": an urgent opener before a document errand
        self.errands = errands or TermSet(None)
        # "nomor darurat", "keadaan darurat": the alarm word is part of a noun
        self.compounds = compounds or TermSet(None)

    @classmethod
    def from_data(cls, normalise: Callable[[str], str], stopwords: frozenset[str] = frozenset(),
                  data: dict[str, Any] | None = None) -> EmergencyCheck:
        data = load_data("emergency") if data is None else data
        categories = build_categories(data, "emergency.yaml", normalise)
        problems = []
        for category in categories:
            for part in ("text", "speech"):
                texts = category.data.get(part) or {}
                if not all(isinstance(texts.get(lang), str) for lang in ("id", "en")):
                    problems.append(f"emergency.yaml: categories.{category.name}.{part}: "
                                    "needs 'id' and 'en' texts")
        common = data.get("common") or {}
        for part in ("text", "speech"):
            if not all(isinstance((common.get(part) or {}).get(lang), str) for lang in ("id", "en")):
                problems.append(f"emergency.yaml: common.{part}: needs 'id' and 'en' texts")
        raw_patterns = []
        for i, pattern in enumerate(data.get("raw_patterns") or []):
            try:
                raw_patterns.append(re.compile(str(pattern), re.IGNORECASE))
            except re.error as exc:
                problems.append(f"emergency.yaml: raw_patterns[{i}]: {exc}")
        if problems:
            raise KbError(problems)
        alone = {normalise(str(w)) for w in data.get("alone") or []}
        def terms(key: str) -> TermSet:
            return TermSet.build(data.get(key) or [], normalise)

        soft = {str(t) for t in data.get("soft") or []}
        hard = TermSet.build([t for t in data.get("blockers") or [] if str(t) not in soft], normalise)
        return cls(categories, terms("now"), terms("severe"), terms("blockers"), terms("legal"),
                   alone, raw_patterns, common, stopwords, terms("second_chance"), terms("here"),
                   terms("past"), hard, TermSet.build([f"tidak {w}" for w in soft], normalise),
                   terms("asks"), terms("favours"), terms("errands"), terms("compounds"))

    def _calm(self, padded: str) -> tuple[str, bool]:
        """`padded` without the alarm words that only ask a favour or hurry an errand, and
        whether it is such an errand. An `alone` word ("tolong", "darurat") at most two
        words before a `favours` verb asks a favour ("tolong kasih tahu alamatnya", "bisa
        tolong hapus catatan saya"). A question naming a document (`errands`: SIM, SKCK,
        paspor...) whose only alarm words are `alone` words is an errand in a hurry
        ("TOLONG PAK darurat, SIM saya habis besok"; "help! I lost my passport"): those
        words are dropped and the document blocks like a procedure word. An alarm word
        inside a `compounds` noun ("nomor darurat") is dropped too. A word of harm
        ("berdarah", "pingsan") keeps every alarm word."""
        alone = [(a, b) for a, b in self.severe.spans(padded)
                 if padded[a:b].strip() in self.alone]
        if not alone:
            return padded, False
        harm = len(alone) < len(self.severe.spans(padded))
        favours = self.favours.spans(padded)
        compounds = self.compounds.spans(padded)
        drop = [(a, b) for a, b in alone
                if any(a < f and len(padded[b:f].split()) <= 2 for f, _ in favours)
                or any(c <= a and b <= d for c, d in compounds)]
        errand = not harm and self.errands.search(padded)
        if errand:
            drop = alone
        for start, end in sorted(set(drop), reverse=True):
            padded = padded[:start] + padded[end:]
        return " ".join(padded.split()).join("  "), bool(errand)

    def _told(self, padded: str) -> str:
        """`padded` without the `now` words that belong to a question of what to do after
        the event ("sekarang harus bagaimana", "harus apa sekarang", "saiki kudu piye"): at
        most one word away from an `asks` phrase, they are no sign that the danger is still
        present."""
        asked = self.asks.spans(padded)
        if not asked:
            return padded
        drop = [(start, end) for start, end in self.now.spans(padded)
                if any(len(padded[b:start].split()) <= 1 if b <= start else
                       len(padded[end:a].split()) <= 1 for a, b in asked)]
        for start, end in sorted(drop, reverse=True):
            padded = padded[:start] + padded[end:]
        return " ".join(padded.split()).join("  ")

    def _blocked(self, padded: str, blockers: TermSet | None = None) -> bool:
        padded, errand = self._calm(padded)
        if self.severe.search(padded):
            return False
        padded = self._told(padded)
        if errand and not self.now.search(padded) and not self.here.search(padded):
            return True
        now = self.now.search(padded)
        if self.legal.search(padded) or (self.past.search(padded) and not now):
            return True
        blockers = self.blockers if blockers is None else blockers
        if self.statements.pattern is not None:
            padded = self.statements.pattern.sub("", padded)
        return bool(blockers.search(padded) and not now and not self.here.search(padded))

    def blocked(self, normalised: str, weak: bool = True) -> bool:
        """True when the question is about the past, a procedure or the law (and no one is
        said to be hurt). `weak=False`: the `soft` blockers do not count, for a question the
        intent model is sure is a cry for help ("adik saya dikurung, tidak boleh keluar":
        "boleh" asks about a rule elsewhere)."""
        padded = pad(normalised)
        return self._blocked(padded, self.blockers if weak else self.hard)

    def escalation_for(self, category: str) -> Escalation:
        by_name = {c.name: c for c in self.categories}
        return self._escalation(by_name.get(category, self.categories[-1]), name=category)

    def second_look(self, normalised: str) -> Escalation | None:
        """For a question nothing else can answer: a danger word and no blocker escalates."""
        padded = pad(normalised)
        if self.second_chance.search(padded) and not self._blocked(padded):
            by_name = {c.name: c for c in self.categories}
            return self._escalation(by_name.get("help", self.categories[-1]), name="danger_word")
        return None

    def _lasting(self, padded: str) -> str:
        """`padded` without the past words that say how long something has been there
        ("dari tadi pagi", "sejak 1 jam lalu"): for a category marked `lasting` (an
        unattended object), the time since it was left is no story, it is still there."""
        words = (" dari ", " sejak ", " semenjak ", " since ", " selama ")
        drop = [(a, b) for a, b in self.past.spans(padded)
                if any(w in " " + " ".join(padded[:a].split()[-3:]) + " " for w in words)]
        for start, end in sorted(drop, reverse=True):
            padded = padded[:start] + padded[end:]
        return " ".join(padded.split()).join("  ")

    def check(self, raw: str, normalised: str) -> Escalation | None:
        blocked = self._blocked(self._told(pad(normalised)))
        padded, errand = self._calm(self._told(pad(normalised)))
        lasting: bool | None = None
        for category in self.categories:
            if blocked and category.data.get("blockable", True):
                if not category.data.get("lasting"):
                    continue
                if lasting is None:
                    lasting = self._blocked(self._lasting(self._told(pad(normalised))))
                if lasting:
                    continue
            if category.matches(padded):
                return self._escalation(category)
        if not errand and self._cry_for_help(raw, " ".join(padded.split())):
            by_name = {c.name: c for c in self.categories}
            return self._escalation(by_name.get("help", self.categories[-1]), name="help")
        return None

    def _cry_for_help(self, raw: str, normalised: str) -> bool:
        if any(p.search(raw) for p in self.raw_patterns):
            return True
        content = [t for t in normalised.split() if t not in self.stopwords or t in self.alone]
        joined = " ".join(content)
        return bool(content) and (joined in self.alone or all(t in self.alone for t in content))

    def _escalation(self, category: Category, name: str | None = None) -> Escalation:
        spec = category.data
        text = {lang: f"{self.common['text'][lang].strip()}\n{spec['text'][lang].strip()}"
                for lang in ("id", "en")}
        speech = {lang: f"{self.common['speech'][lang].strip()} {spec['speech'][lang].strip()}"
                  for lang in ("id", "en")}
        return Escalation(name or category.name, text, speech)


def examples_kb(data: dict[str, Any] | None = None) -> KnowledgeBase:
    """The `examples` of emergency.yaml as a small KB (one pseudo-entry per category), so the
    retriever can say how much a question resembles a cry for help."""
    data = load_data("emergency") if data is None else data
    entries = {}
    for name, examples in (data.get("examples") or {}).items():
        if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
            raise KbError([f"emergency.yaml: examples.{name}: must be a list of sentences"])
        entries[str(name)] = Entry(
            id=str(name), topic="darurat", title={"id": str(name), "en": str(name)},
            questions=tuple(examples), answer={"id": "", "en": ""}, speech={"id": "", "en": ""},
            sources=(), checked=dt.date(2026, 1, 1))
    return KnowledgeBase(entries=entries, version="", root="emergency.yaml")
