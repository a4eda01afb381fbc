"""Early endpointing: may the utterance end before `silence_ms` of silence? Pure, no I/O.

The VAD ends an utterance after `[voice] silence_ms` (600 ms) of silence. Most of that wait
is spent after a question that was already complete. This policy looks at what the speaker
has said so far (the early Whisper transcript, or Vosk's partial) and at the brain's reply
for it, and says whether a shorter silence is enough:

* an emergency (the brain escalates) ends after `emergency_end_ms`: help matters more
  than the wording;
* a confident answer ends after `early_end_ms`;
* anything else waits for `silence_ms`, which stays the upper bound.

It never ends a sentence that is not over. The trap is that the knowledge base answers
fragments confidently: "berapa biaya" alone gets the SIM fee (confidence 0.59) although
the resident is about to say "... bikin SKCK". So an early end also needs
  - a last word a sentence can end on (not "bikin", "untuk", "yang", "di", "for", "the"...),
  - at least `min_words` words ("halo", "SKCK", "tolong" alone often go on),
  - the answering entry's document named in the question: an entry about SIM answering a
    question that names no document is a guess from generic words ("berapa biaya"),
  - a word that is not generic: "bagaimana cara", "berapa biaya" lack their topic,
  - the brain's confidence at least `min_confidence`.
The word lists are data per language (firmware/voice/endpointing.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (Whisper ends fragments with '.' or '?' too)."""
    return _TOKEN.findall((text or "").lower())


@dataclass(frozen=True)
class Heard:
    """What the speaker has said so far and what the brain would answer to it."""

    text: str
    action: str = "fallback"       # the brain's action: answer | escalate | refuse | fallback
    confidence: float = 0.0
    entry: str | None = None
    normalised: str = ""           # the brain's normalised question (its words)
    named: frozenset[str] = frozenset()       # documents the question names (SKCK, SIM...)
    entry_docs: frozenset[str] = frozenset()  # documents the answering entry is about

    @classmethod
    def from_reply(cls, text: str, reply: Mapping[str, Any], named: Iterable[str] = (),
                   entry_docs: Iterable[str] = ()) -> Heard:
        return cls(text, str(reply.get("action") or "fallback"),
                   float(reply.get("confidence") or 0.0), reply.get("entry"),
                   str(reply.get("normalised") or ""), frozenset(named), frozenset(entry_docs))


@dataclass(frozen=True)
class LanguageWords:
    """Per-language word lists: words a sentence does not end on, and generic question words."""

    open_words: frozenset[str] = frozenset()
    generic_words: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EndpointRules:
    """The policy's settings and data. `early_end_ms = 0` and `emergency_end_ms = 0` turn it off."""

    silence_ms: int = 600
    early_end_ms: int = 300
    emergency_end_ms: int = 200
    min_confidence: float = 0.5
    min_words: int = 2
    words: Mapping[str, LanguageWords] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Mapping[str, Any], **settings: Any) -> EndpointRules:
        """`data` = {"languages": {lang: {"open_words": [...], "generic_words": [...]}},
        "min_confidence": x, "min_words": n}; `settings` = silence_ms, early_end_ms, ...
        """
        def listed(lang: str, items: Any) -> frozenset[str]:
            items = list(items or [])
            if not all(isinstance(w, str) for w in items):  # YAML reads a bare on / no as a bool
                raise ValueError(f"endpointing words of {lang!r} must be strings (quote 'on', 'no')")
            return frozenset(tokens(" ".join(items)))

        words = {lang: LanguageWords(listed(lang, v.get("open_words")), listed(lang, v.get("generic_words")))
                 for lang, v in (data.get("languages") or {}).items()}
        known = {"min_confidence": float(data.get("min_confidence", 0.5)),
                 "min_words": int(data.get("min_words", 2))}
        known.update(settings)
        return cls(words=words, **known)

    @property
    def enabled(self) -> bool:
        return self.soonest_ms() < self.silence_ms

    def soonest_ms(self) -> int:
        """The shortest silence after which any utterance may end (silence_ms when off)."""
        choices = [ms for ms in (self.early_end_ms, self.emergency_end_ms) if 0 < ms < self.silence_ms]
        return min(choices, default=self.silence_ms)

    def lang_words(self, lang: str) -> LanguageWords:
        if lang in self.words:
            return self.words[lang]
        # An unknown language: every list applies (a stricter policy, never a laxer one).
        return LanguageWords(frozenset().union(*(w.open_words for w in self.words.values())),
                             frozenset().union(*(w.generic_words for w in self.words.values())))


@dataclass(frozen=True)
class Verdict:
    """`end_after_ms`: the silence after which this transcript may end the utterance."""

    end_after_ms: int
    reason: str

    def ends(self, silence_ms: int) -> bool:
        return silence_ms >= self.end_after_ms


def judge(heard: Heard | None, rules: EndpointRules, lang: str = "id") -> Verdict:
    """How much silence this transcript needs before the utterance may end, and why."""
    wait = rules.silence_ms
    if heard is None:
        return Verdict(wait, "no-transcript")
    said = tokens(heard.text)
    if not said:
        return Verdict(wait, "no-transcript")
    words = rules.lang_words(lang)
    if said[-1] in words.open_words:
        return Verdict(wait, f"open-word:{said[-1]}")
    if len(said) < rules.min_words:
        return Verdict(wait, "too-few-words")
    if heard.action == "escalate":
        if 0 < rules.emergency_end_ms < wait:
            return Verdict(rules.emergency_end_ms, "emergency")
        if 0 < rules.early_end_ms < wait:
            return Verdict(rules.early_end_ms, "emergency")
        return Verdict(wait, "off")
    if not 0 < rules.early_end_ms < wait:
        return Verdict(wait, "off")
    if heard.action != "answer":
        return Verdict(wait, f"not-an-answer:{heard.action}")
    if heard.confidence < rules.min_confidence:
        return Verdict(wait, "low-confidence")
    if heard.entry_docs and not (heard.named & heard.entry_docs):
        return Verdict(wait, "topic-missing")
    meant = tokens(heard.normalised) or said
    if all(w in words.generic_words or w in words.open_words for w in meant):
        return Verdict(wait, "generic")
    return Verdict(rules.early_end_ms, "confident")


def decide(silence_ms: int, heard: Heard | None, rules: EndpointRules, lang: str = "id") -> Verdict | None:
    """The verdict when the utterance ends now, after `silence_ms` of silence; else None."""
    verdict = judge(heard, rules, lang)
    if verdict.end_after_ms < rules.silence_ms and verdict.ends(silence_ms):
        return verdict
    return None
