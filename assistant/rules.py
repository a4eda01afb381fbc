"""Keyword rules over normalised questions, shared by the safety filter and the emergency check.

A term is a word (also with -nya/-ku/-mu: "anak" matches "anaknya"), a prefix (`gaji*`), a
phrase (`damai di tempat`) or `#number` (any number); terms are normalised
with the same normaliser as questions, so data may be written in any spelling. A group is a
list of terms (any one matches). A rule is a list of groups that must all match, each at a
different place in the question, so "pacar" cannot count both as the relationship word and
as the person asked about. A category has rules and `unless` terms that block it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from assistant.errors import KbError

Span = tuple[int, int]


@dataclass(frozen=True)
class TermSet:
    """Any-of a list of terms, compiled into one regular expression over " tok tok "."""

    pattern: re.Pattern[str] | None

    @classmethod
    def build(cls, terms: Iterable[str], normalise: Callable[[str], str]) -> TermSet:
        parts: list[str] = []
        for term in terms:
            if term == "#number":  # any number: "kasih 50 ribu" -> "kasih 50000"
                parts.append(r" [0-9]+(?= )")
                continue
            prefix = term.endswith("*")
            text = normalise(term.rstrip("*"))
            if not text:
                continue
            body = re.escape(text)
            if prefix:
                parts.append(f" {body}[a-z0-9]*(?= )")
            elif len(text.rsplit(" ", 1)[-1]) >= 3 and not text[-1].isdigit():
                # Possessive endings belong to the word: "korbannya", "anakku", "rumahmu".
                parts.append(f" {body}(?:nya|ku|mu)?(?= )")
            else:
                parts.append(f" {body}(?= )")
        if not parts:
            return cls(None)
        # Longest first, so a phrase wins over its first word when spans matter.
        parts.sort(key=len, reverse=True)
        return cls(re.compile("|".join(parts)))

    def spans(self, padded: str) -> list[Span]:
        if self.pattern is None:
            return []
        return [(m.start() + 1, m.end()) for m in _overlapping(self.pattern, padded)]

    def search(self, padded: str) -> bool:
        return self.pattern is not None and self.pattern.search(padded) is not None


def _overlapping(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    # Matches may start at every token boundary; a plain finditer would skip a shorter
    # term hidden inside a longer one, which the distinct-place search needs.
    found: list[re.Match[str]] = []
    pos = 0
    while True:
        match = pattern.search(text, pos)
        if match is None:
            return found
        found.append(match)
        pos = match.start() + 1


@dataclass(frozen=True)
class Category:
    """One named category: matches when any rule matches and no `unless` term appears."""

    name: str
    rules: tuple[tuple[TermSet, ...], ...]
    unless: TermSet
    data: dict[str, Any]

    def matches(self, padded: str) -> bool:
        if self.unless.search(padded):
            return False
        return any(_all_groups_at_distinct_places(rule, padded) for rule in self.rules)


def _all_groups_at_distinct_places(groups: tuple[TermSet, ...], padded: str) -> bool:
    options = []
    for group in groups:
        spans = group.spans(padded)
        if not spans:
            return False
        options.append(spans)

    def place(index: int, used: list[Span]) -> bool:
        if index == len(options):
            return True
        for span in options[index]:
            free = all(span[1] <= a or span[0] >= b for a, b in used)
            if free and place(index + 1, [*used, span]):
                return True
        return False

    return place(0, [])


def pad(normalised: str) -> str:
    """The form the compiled rules search: one space around every token."""
    return f" {normalised} "


def build_categories(data: dict[str, Any], source: str,
                     normalise: Callable[[str], str]) -> list[Category]:
    """Compile the `categories` of a data file; raises KbError naming the file and field."""
    groups: dict[str, list[str]] = {
        str(k): [str(t) for t in v] for k, v in (data.get("groups") or {}).items()
    }
    problems: list[str] = []

    def expand(terms: Any, where: str) -> list[str]:
        if not isinstance(terms, list) or not terms:
            problems.append(f"{source}: {where}: must be a non-empty list of terms")
            return []
        out: list[str] = []
        for term in terms:
            term = str(term)
            if term.startswith("@"):
                if term[1:] not in groups:
                    problems.append(f"{source}: {where}: unknown group {term!r}")
                    continue
                out.extend(expand(groups[term[1:]], f"groups.{term[1:]}"))
            else:
                out.append(term)
        return out

    categories: list[Category] = []
    raw = data.get("categories")
    if not isinstance(raw, dict) or not raw:
        raise KbError([f"{source}: categories: must be a non-empty mapping"])
    for name, spec in raw.items():
        where = f"categories.{name}"
        if not isinstance(spec, dict) or not isinstance(spec.get("rules"), list):
            problems.append(f"{source}: {where}.rules: must be a list of rules")
            continue
        rules = []
        for i, rule in enumerate(spec["rules"]):
            if not isinstance(rule, list) or not rule:
                problems.append(f"{source}: {where}.rules[{i}]: must be a list of term groups")
                continue
            rules.append(tuple(TermSet.build(expand(g, f"{where}.rules[{i}]"), normalise)
                               for g in rule))
        unless_terms = expand(spec["unless"], f"{where}.unless") if spec.get("unless") else []
        categories.append(Category(str(name), tuple(rules),
                                   TermSet.build(unless_terms, normalise), spec))
    if problems:
        raise KbError(problems)
    return categories
