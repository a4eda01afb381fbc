"""Turn a resident's question into one canonical, lower-case token string.

Deterministic and data-driven (`data/normalise.yaml`): chat abbreviations, slang, Javanese
function words, common typos, English words, spelled-out letters from speech ("es ka ce ka"
-> "skck"), number words ("seratus sepuluh" -> "110") and elongations ("tolonggg" -> "tolong").
The knowledge base's example questions go through the same normaliser, so both sides meet.
Pure: no I/O after construction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from assistant.data import load_data
from assistant.errors import KbError

_DIGIT_GROUP = re.compile(r"(?<=\d)[.,](?=\d{3}(?!\d))")
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_RUN3 = re.compile(r"(.)\1{2,}")
_RUN2 = re.compile(r"(.)\1+")


@dataclass
class Normaliser:
    """Normalises text with the rules of one data file; build once, call many times."""

    letters: dict[str, str]
    acronyms: frozenset[str]
    replace: dict[tuple[str, ...], tuple[str, ...]]
    digits: dict[str, int]
    fixed: dict[str, int]
    teen: str
    tens: str
    hundreds: str
    scales: dict[str, int]
    stopwords: frozenset[str]
    vocabulary: set[str] = field(default_factory=set)
    _max_phrase: int = 1
    _max_acronym: int = 1

    def __post_init__(self) -> None:
        self._max_phrase = max((len(k) for k in self.replace), default=1)
        self._max_acronym = max((len(a) for a in self.acronyms), default=1)
        # Canonical words are known words: elongations collapse towards them.
        for value in self.replace.values():
            self.vocabulary.update(value)

    @classmethod
    def from_data(cls, data: dict[str, Any] | None = None,
                  lexicon: dict[str, Any] | None = None) -> Normaliser:
        """Build from a parsed normalise.yaml and lexicon.yaml (default: the shipped ones).

        Raises KbError when a mapping is not text or the lexicon contradicts normalise.yaml.
        """
        data = load_data("normalise") if data is None else data
        _check(data)
        numbers = data.get("numbers", {})
        replace: dict[tuple[str, ...], tuple[str, ...]] = {}
        for key, value in (data.get("replace") or {}).items():
            key_tokens = tuple(_basic_tokens(str(key)))
            value_tokens = tuple(_basic_tokens(str(value)))
            if key_tokens:
                replace[key_tokens] = value_tokens
        _merge_lexicon(replace, load_data("lexicon") if lexicon is None else lexicon)
        return cls(
            letters={str(k): str(v) for k, v in (data.get("letters") or {}).items()},
            acronyms=frozenset(str(a).replace("-", "") for a in data.get("acronyms") or []),
            replace=replace,
            digits={str(k): int(v) for k, v in numbers.get("digits", {}).items()},
            fixed={str(k): int(v) for k, v in numbers.get("fixed", {}).items()},
            teen=numbers.get("teen", "belas"),
            tens=numbers.get("tens", "puluh"),
            hundreds=numbers.get("hundreds", "ratus"),
            scales={str(k): int(v) for k, v in numbers.get("scales", {}).items()},
            stopwords=frozenset(str(w) for w in data.get("stopwords") or []),
        )

    def learn(self, words: Iterable[str]) -> None:
        """Add known words (e.g. the knowledge base's) that elongations may collapse to."""
        self.vocabulary.update(words)

    def __call__(self, text: str) -> str:
        return " ".join(self.tokens(text))

    def tokens(self, text: str) -> list[str]:
        """The canonical tokens of `text`."""
        tokens = [self._unelongate(t) for t in _basic_tokens(text)]
        tokens = self._join_spelled_letters(tokens)
        # A few passes, so chains settle: "pelat nomer" -> "pelat nomor" -> "nomor polisi".
        for _ in range(3):
            replaced = self._replace(tokens)
            if replaced == tokens:
                break
            tokens = replaced
        return self._numbers(tokens)

    def content_tokens(self, tokens: Iterable[str]) -> list[str]:
        """Tokens without stopwords (for retrieval)."""
        return [t for t in tokens if t not in self.stopwords]

    # -- steps -------------------------------------------------------------------------

    def _unelongate(self, token: str) -> str:
        """ "tolonggg" -> "tolong", "maaaaf" -> "maaf": runs of 3+ letters shrink to a known word."""
        if not _RUN3.search(token) or token.isdigit():
            return token
        double = _RUN3.sub(r"\1\1", token)
        single = _RUN3.sub(r"\1", token)
        for candidate in (single, double):
            if candidate in self.vocabulary or tuple([candidate]) in self.replace:
                return candidate
        fully = _RUN2.sub(r"\1", token)
        if fully in self.vocabulary:
            return fully
        return single

    def _join_spelled_letters(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            found = 0
            if tokens[i] in self.letters:
                letters: list[str] = []
                for j in range(i, min(len(tokens), i + self._max_acronym)):
                    if tokens[j] not in self.letters:
                        break
                    letters.append(self.letters[tokens[j]])
                # The longest run that spells a known acronym wins.
                for n in range(len(letters), 1, -1):
                    if "".join(letters[:n]) in self.acronyms:
                        found = n
                        break
            if found:
                out.append("".join(self.letters[t] for t in tokens[i:i + found]))
                i += found
            else:
                out.append(tokens[i])
                i += 1
        return out

    def _replace(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            for n in range(min(self._max_phrase, len(tokens) - i), 0, -1):
                value = self.replace.get(tuple(tokens[i:i + n]))
                if value is not None:
                    out.extend(value)
                    i += n
                    break
            else:
                out.append(tokens[i])
                i += 1
        return out

    def _is_number_word(self, token: str) -> bool:
        return (token in self.digits or token in self.fixed or token in self.scales
                or token in (self.teen, self.tens, self.hundreds))

    def _numbers(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            starts = self._is_number_word(token) and token not in (self.teen, self.tens, self.hundreds)
            if token.isdigit() and i + 1 < len(tokens) and tokens[i + 1] in self.scales:
                starts = True
            if not starts:
                out.append(token)
                i += 1
                continue
            j = i
            while j < len(tokens) and (self._is_number_word(tokens[j])
                                       or (j == i and tokens[j].isdigit())):
                j += 1
            out.append(self._number_value(tokens[i:j]))
            i = j
        return out

    def _number_value(self, words: list[str]) -> str:
        # "satu satu nol" is read digit by digit (110), as people say phone numbers.
        if len(words) >= 2 and all(w in self.digits for w in words):
            return "".join(str(self.digits[w]) for w in words)
        total = group = pending = 0
        for word in words:
            if word.isdigit():
                pending += int(word)
            elif word in self.digits:
                pending += self.digits[word]
            elif word in self.fixed:
                group += self.fixed[word]
            elif word == self.teen:
                group += pending + 10
                pending = 0
            elif word == self.tens:
                group += pending * 10
                pending = 0
            elif word == self.hundreds:
                group += (pending or 1) * 100
                pending = 0
            elif word in self.scales:
                scale = self.scales[word]
                multiplier = group + pending
                if word.startswith("se") and multiplier == 0:
                    multiplier = 1
                total += (multiplier or 1) * scale
                group = pending = 0
        return str(total + group + pending)


def _check(data: dict[str, Any]) -> None:
    """Every mapping of normalise.yaml must map text to text (YAML turns `no:` into False)."""
    problems = []
    for section in ("letters", "replace"):
        for key, value in (data.get(section) or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                problems.append(f"normalise.yaml: {section}.{key}: key and value must be text "
                                "(quote words like no, yes, on, off)")
    for section in ("acronyms", "stopwords"):
        for value in data.get(section) or []:
            if not isinstance(value, str):
                problems.append(f"normalise.yaml: {section}: {value!r} must be text (quote it)")
    if problems:
        raise KbError(problems)


def _merge_lexicon(replace: dict[tuple[str, ...], tuple[str, ...]],
                   lexicon: dict[str, Any]) -> None:
    """Add the sections of lexicon.yaml (word -> canonical word) to `replace`, in place."""
    problems = []
    for section, mapping in lexicon.items():
        if not isinstance(mapping, dict):
            problems.append(f"lexicon.yaml: {section}: must be a mapping of word: canonical word")
            continue
        for key, value in mapping.items():
            if not isinstance(key, str) or not isinstance(value, str):
                problems.append(f"lexicon.yaml: {section}.{key}: key and value must be text")
                continue
            key_tokens = tuple(_basic_tokens(key))
            value_tokens = tuple(_basic_tokens(value))
            known = replace.get(key_tokens)
            if known is not None and known != value_tokens:
                problems.append(f"lexicon.yaml: {section}.{key}: maps to {value!r} but "
                                f"normalise.yaml (or another section) says {' '.join(known)!r}")
                continue
            if key_tokens and key_tokens != value_tokens:
                replace[key_tokens] = value_tokens
    if problems:
        raise KbError(problems)


def _basic_tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    # Accents are spelling, not letters: Sundanese "badé", "waé", "téh" and Javanese "karèk"
    # are "bade", "wae", "teh", "karek" (a split on the accented letter broke such words).
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.replace("’", "'").replace("'s ", " ").replace("'", "")  # English possessive
    text = _DIGIT_GROUP.sub("", text)
    text = _LETTER_DIGIT.sub(" ", text)
    return [t for t in _NON_WORD.split(text) if t]


_DEFAULT: Normaliser | None = None


def normalise(text: str) -> str:
    """Normalise with the shipped data (built on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Normaliser.from_data()
    return _DEFAULT(text)
