"""Text made ready for speaking: sentences, and numbers read the Indonesian way.

The knowledge base writes numbers as digits ("Rp30.000", "110"); a voice must say
"tiga puluh ribu rupiah" and read an emergency number digit by digit ("satu satu nol").
Pure functions, no I/O.
"""

from __future__ import annotations

import re

_ONES = ["nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan",
         "sepuluh", "sebelas"]
_EN_DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def terbilang(n: int) -> str:
    """An integer in Indonesian words: 30000 -> 'tiga puluh ribu'."""
    if n < 0:
        return "minus " + terbilang(-n)
    if n < 12:
        return _ONES[n]
    if n < 20:
        return _ONES[n - 10] + " belas"
    if n < 100:
        tens, rest = divmod(n, 10)
        return _ONES[tens] + " puluh" + (" " + _ONES[rest] if rest else "")
    if n < 200:
        return "seratus" + (" " + terbilang(n - 100) if n > 100 else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " ratus" + (" " + terbilang(rest) if rest else "")
    if n < 2000:
        return "seribu" + (" " + terbilang(n - 1000) if n > 1000 else "")
    for size, word in ((10**12, "triliun"), (10**9, "miliar"), (10**6, "juta"), (1000, "ribu")):
        if n >= size:
            head, rest = divmod(n, size)
            return terbilang(head) + " " + word + (" " + terbilang(rest) if rest else "")
    raise AssertionError("unreachable")


def digits(text: str, lang: str = "id") -> str:
    names = _ONES if lang == "id" else _EN_DIGITS
    return " ".join(names[int(c)] for c in text if c.isdigit())


# Rp30.000 / Rp 30.000,- / Rp1,5 juta
_RUPIAH = re.compile(r"\bRp\.?\s?(\d{1,3}(?:\.\d{3})+|\d+)(?:,-)?")
# Phone-like numbers are read digit by digit: 110, 112, 118-119, 1500-xxx, 08xx.
_PHONE = re.compile(r"(?<![\d.,])(0\d{6,}|1\d{2}|\d{3,4}-\d{3,4})(?![\d]|[.,]\d)")
_GROUPED = re.compile(r"(?<![\d,])\d{1,3}(?:\.\d{3})+(?![\d])")
_DECIMAL = re.compile(r"(?<![\d.])(\d+),(\d+)(?![\d.])")
_INT = re.compile(r"(?<![\w.])\d+(?![\d])")
_TIMES = re.compile(r"(\d+)\s?[x×]\s?(\d+)")
_RANGE = re.compile(r"(\d+)\s?[–-]\s?(\d+)")


def speakable(text: str, lang: str = "id") -> str:
    """Replace digits and symbols a voice would misread by words."""
    if lang != "id":
        text = _RUPIAH.sub(lambda m: m.group(1).replace(".", ",") + " rupiah", text)
        return text.replace("%", " percent")

    def emergency_range(m: re.Match) -> str:
        a, b = m.group(1), m.group(2)
        if len(a) == 3 and len(b) == 3 and a.startswith("1") and b.startswith("1"):
            return f"{digits(a)} atau {digits(b)}"
        return f"{a} sampai {b}"

    text = _RUPIAH.sub(lambda m: terbilang(int(m.group(1).replace(".", ""))) + " rupiah", text)
    text = _TIMES.sub(lambda m: f"{m.group(1)} kali {m.group(2)}", text)
    text = _RANGE.sub(emergency_range, text)
    text = _GROUPED.sub(lambda m: terbilang(int(m.group(0).replace(".", ""))), text)
    text = _DECIMAL.sub(lambda m: f"{terbilang(int(m.group(1)))} koma {digits(m.group(2))}", text)
    text = _PHONE.sub(lambda m: digits(m.group(0)), text)
    text = _INT.sub(lambda m: terbilang(int(m.group(0))) if len(m.group(0)) < 16 else digits(m.group(0)), text)
    text = text.replace("%", " persen").replace("&", " dan ")
    return re.sub(r"\s+", " ", text).strip()


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def sentences(text: str) -> list[str]:
    """Split on sentence punctuation followed by space; markdown marks removed."""
    clean = re.sub(r"[*_`#>]+", "", text or "")
    clean = re.sub(r"\s+", " ", clean).strip()
    return [s.strip() for s in _SENTENCE_END.split(clean) if s.strip()]


def speech_units(text: str, first_max_words: int = 8, max_words: int = 14) -> list[str]:
    """Sentences to synthesise one by one; a long first sentence is split at a comma, and
    no unit is longer than `max_words`.

    The first unit decides how soon the resident hears anything (on a Pi 4 a Piper medium
    voice needs about a third of the audio's length to make it), so a first sentence longer
    than `first_max_words` is cut after its first comma when that leaves at least 3 words.
    The memory Piper needs grows with the unit's length (about 10 MB a word for a medium
    voice: 25 words took 250 MB at once here), so a sentence longer than `max_words` is cut
    at its commas, and a clause still longer into even parts (0: no limit).
    """
    units = sentences(text)
    if units and len(units[0].split()) > first_max_words:
        head, sep, tail = units[0].partition(", ")
        if sep and len(head.split()) >= 3 and tail.strip():
            units[0:1] = [head + ",", tail]
    if max_words > 0:
        units = [part for unit in units for part in _bounded(unit, max_words)]
    return units


def _bounded(unit: str, max_words: int) -> list[str]:
    """`unit` in parts of at most `max_words` words: at commas first, then evenly."""
    if len(unit.split()) <= max_words:
        return [unit]
    pieces = [p for p in re.split(r"(?<=[,;:])\s+", unit) if p]
    parts: list[str] = []
    for piece in pieces:
        if parts and len(parts[-1].split()) + len(piece.split()) <= max_words:
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    out: list[str] = []
    for part in parts:
        words = part.split()
        n = -(-len(words) // max_words)  # parts needed
        size = -(-len(words) // n)
        out += [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
    return out
