"""A report's severity, decided once at intake from its category and words. Pure, no I/O.

Officers on a night shift read the queue high-first: a report that mentions an injury, a
weapon, a child or a fire is `high` whatever its category; an accident, violence or a
disaster without such words is `medium`; everything else is `normal`. The word lists are
data (below), matched on whole words of the lower-cased text, so "bakar" matches "bakar"
and "terbakar" (listed) but "pembakaran" only if listed too.
"""

from __future__ import annotations

import re

LEVELS = ("high", "medium", "normal")  # most urgent first
RANK = {level: i for i, level in enumerate(LEVELS)}  # sort key: 0 is the most urgent

# Words (and short phrases) of each kind that make a report high. Bahasa Indonesia as
# residents type or dictate it, with common informal spellings.
HIGH_WORDS: dict[str, tuple[str, ...]] = {
    "injury": (
        "luka", "terluka", "luka-luka", "berdarah", "darah", "pingsan", "tidak sadar",
        "tak sadarkan diri", "meninggal", "tewas", "mati", "korban", "patah tulang", "kritis",
        "sekarat", "ditusuk", "dibacok", "dipukuli", "dianiaya", "tertabrak", "ketabrak",
    ),
    "weapon": (
        "senjata", "senjata tajam", "sajam", "pisau", "golok", "celurit", "clurit", "parang",
        "pistol", "senpi", "senapan", "tembak", "ditembak", "tembakan", "bom", "molotov",
        "samurai", "badik",
    ),
    "child": (
        "anak", "anak-anak", "bocah", "balita", "bayi", "murid", "siswa", "pelajar",
        "anak kecil", "hilang anak", "penculikan", "diculik",
    ),
    "fire": (
        "kebakaran", "terbakar", "dibakar", "bakar", "api", "asap tebal", "meledak", "ledakan",
        "korsleting",
    ),
}

# Phrases that contain a listed word but mean nothing urgent; removed before matching.
NOT_URGENT: tuple[str, ...] = (
    "kereta api", "kembang api", "lampu mati", "listrik mati", "mesin mati", "hp mati",
    "motor mati", "anak kunci",
)

MEDIUM_CATEGORIES = ("kecelakaan", "kekerasan", "bencana")


def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first so a phrase wins over its first word; \b on both sides: whole words.
    alternatives = sorted((re.escape(w) for w in words), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])")


_PATTERNS = {kind: _pattern(words) for kind, words in HIGH_WORDS.items()}


def reasons(text: str) -> list[str]:
    """The kinds of high-severity words found in `text` (e.g. ["injury", "fire"])."""
    lowered = text.lower()
    for phrase in NOT_URGENT:
        lowered = lowered.replace(phrase, " ")
    return [kind for kind, pattern in _PATTERNS.items() if pattern.search(lowered)]


def assess(category: str, *texts: str) -> str:
    """The severity of a report of `category` whose description (and place) are `texts`:
    one of LEVELS."""
    if reasons(" \n ".join(texts)):
        return "high"
    if category in MEDIUM_CATEGORIES:
        return "medium"
    return "normal"
