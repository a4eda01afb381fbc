"""Variants of a training question, as residents type or a speech recogniser writes them.

The intent model learns from every KB example question plus a few of these variants, so it
has seen dropped vowels ("brp", "prpnjg"), "-ny"/"-y" endings, missing words (speech that
lost a word), swapped letters and chat particles before anyone types them. Deterministic:
the same question and seed give the same variants (a model trained twice is the same).
Pure: no I/O. Written here rather than taken from a library because the rules are specific
to Indonesian chat spelling (no augmentation library covers "-nya" -> "-ny" or "yang" -> "yg").
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence

VOWELS = frozenset("aeiou")
PARTICLES = ("ya", "sih", "dong", "pak", "kak", "min", "gan", "nih", "y")
MIN_WORD = 4  # shorter words are left alone: "sim", "ktp" carry the meaning


def drop_vowels(word: str) -> str:
    """ "berapa" -> "brp", "perpanjang" -> "prpnjng": keep the first letter, drop inner vowels."""
    if len(word) < MIN_WORD or word.isdigit():
        return word
    inner = "".join(c for c in word[1:-1] if c not in VOWELS)
    return word[0] + inner + word[-1]


def short_ending(word: str) -> str:
    """ "biayanya" -> "biayany", "caranya" -> "carany"; "saya" -> "sy"."""
    if word.endswith("nya") and len(word) > 5:
        return word[:-1]
    if word.endswith("ya") and len(word) > 3:
        return word[:-2] + "y"
    return word


def swap_letters(word: str, rng: random.Random) -> str:
    """One typo: two neighbouring letters swapped ("syarat" -> "syraat")."""
    if len(word) < MIN_WORD + 1 or word.isdigit():
        return word
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def variants(text: str, n: int = 3, seed: int = 0,
             content: Callable[[str], bool] = lambda w: True) -> list[str]:
    """Up to `n` distinct variants of `text` (lower-case words), never `text` itself.

    `content` says which words carry meaning; only those are respelled or dropped.
    """
    words = text.lower().split()
    if not words:
        return []
    rng = random.Random(zlib.crc32(text.encode()) ^ seed)
    out: list[str] = []
    tried = 0
    while len(out) < n and tried < n * 4:
        tried += 1
        kind = tried % 4
        new = list(words)
        idx = [i for i, w in enumerate(new) if content(w) and len(w) >= MIN_WORD]
        if kind == 0 and idx:  # chat spelling: vowels dropped in one or two words
            for i in rng.sample(idx, min(len(idx), rng.choice((1, 2)))):
                new[i] = drop_vowels(new[i])
            new = [short_ending(w) for w in new]
        elif kind == 1 and len(new) > 3:  # speech lost a word
            del new[rng.randrange(len(new))]
        elif kind == 2 and idx:  # a typo
            i = rng.choice(idx)
            new[i] = swap_letters(new[i], rng)
        else:  # chat particles around the question
            new = [*new, rng.choice(PARTICLES)] if rng.random() < 0.5 else [rng.choice(PARTICLES), *new]
        candidate = " ".join(new)
        if candidate != text and candidate not in out:
            out.append(candidate)
    return out


def framed(text: str, before: Sequence[str], after: Sequence[str], n: int = 2,
           seed: int = 0) -> list[str]:
    """Up to `n` distinct copies of `text` inside a frame people put around it: a word or two
    before ("pak", "mau tanya") or after ("sekarang", "gimana"), alternating. The frames are
    data (intents.yaml `frames`), per kind of label: a cry for help and a question to refuse
    are learned with and without the words around them, so the words around a new question
    do not decide its kind. Deterministic like `variants`."""
    words = text.lower().split()
    if not words or not (before or after):
        return []
    rng = random.Random(zlib.crc32(text.encode()) ^ seed ^ 0x5F5F)
    out: list[str] = []
    for i in range(n * 3):
        side = before if (i % 2 == 0 and before) or not after else after
        frame = rng.choice(list(side)).lower()
        candidate = f"{frame} {text.lower()}" if side is before else f"{text.lower()} {frame}"
        if candidate != text and candidate not in out:
            out.append(candidate)
        if len(out) >= n:
            break
    return out
