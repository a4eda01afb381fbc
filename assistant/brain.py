"""The assistant brain: normalise -> emergency check -> safety filter -> retrieve -> decide.

Deciding a fallback takes one more look for danger words (`second_chance` in
emergency.yaml): a question the KB cannot answer that mentions "maling", "darah", "pingsan"
without a blocker is escalated rather than answered with "saya belum tahu".

Pure Python, no audio or hardware: typed and spoken questions go through the same `ask()`.
The emergency check runs before the safety filter on purpose: someone in danger must never
be refused because the same words also name a person or an address ("rumah tetangga saya
kebakaran"). Every text the brain says comes from a data file or a KB entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.data import load_data
from assistant.emergency import EmergencyCheck, examples_kb
from assistant.errors import KbError
from assistant.kb import LANGS, KnowledgeBase, load_kb
from assistant.normalise import Normaliser
from assistant.retrieve import Retriever, Stemmer
from assistant.safety import SafetyFilter
from assistant.safety import examples_kb as refusal_examples_kb

ACTIONS = ("answer", "refuse", "escalate", "fallback")
DEFAULT_MIN_CONFIDENCE = 0.25
SUGGESTION_FLOOR = 0.12  # fallback suggestions below this score would only confuse
# Longer input is cut: no resident's question is this long, and it bounds the work per ask.
MAX_QUESTION_CHARS = 500
EMERGENCY_ENTRY = "darurat-nomor"
REFUSAL_EXAMPLE_THRESHOLD = 0.25  # dev set: no answerable or KB question refused
REFUSAL_MARGIN = 0.1  # and clearly closer than any KB entry (dev set: no false refusal)
EXAMPLE_THRESHOLD = 0.2  # resemblance to emergency.yaml examples that escalates (dev set: no false alarm)
_ENGLISH_HINT = re.compile(r"\b(how|what|where|when|is|are|do|does|can|my|the|i)\b", re.I)


@dataclass(frozen=True)
class Reply:
    """What the assistant answers to one question."""

    action: str                 # answer | refuse | escalate | fallback
    text: str                   # screen text (same markup as KB answers)
    speech: str                 # short spoken text
    entry: str | None = None    # KB entry id (answer), else None
    confidence: float = 0.0     # 0..1
    suggestions: list[dict[str, str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    category: str | None = None  # refusal or emergency category
    lang: str = "id"
    normalised: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Called with (question, reply) for every fallback: the caller decides whether to log.
UnansweredHook = Callable[[str, Reply], None]


class Brain:
    """One loaded knowledge base and the rules around it; build once, ask many times."""

    def __init__(self, kb: KnowledgeBase, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 on_unanswered: UnansweredHook | None = None) -> None:
        self.kb = kb
        self.min_confidence = min_confidence
        self.on_unanswered = on_unanswered
        data = load_data("normalise")
        self.normaliser = Normaliser.from_data(data)
        # Words of the KB are "known": elongated spellings collapse towards them.
        for entry in kb.entries.values():
            for question in entry.questions:
                self.normaliser.learn(self.normaliser.tokens(question))
        self.emergency = EmergencyCheck.from_data(self.normaliser, self.normaliser.stopwords)
        self.safety = SafetyFilter.from_data(self.normaliser)
        stemmer = Stemmer.from_data(data.get("stem"))
        self.retriever = Retriever(kb, self.normaliser, stemmer)
        self.emergency_examples = Retriever(examples_kb(), self.normaliser, stemmer)
        self.refusal_examples = Retriever(refusal_examples_kb(), self.normaliser, stemmer)
        self.replies = load_data("replies")
        _check_replies(self.replies)

    def normalise(self, text: str) -> str:
        return self.normaliser(text)

    def ask(self, question: str, lang: str = "id") -> Reply:
        """Answer one question in `lang` ("id" or "en"; anything else means "id")."""
        return self._ask(question, lang, log=True)

    def _ask(self, question: str, lang: str, log: bool) -> Reply:
        lang = lang if lang in LANGS else "id"
        raw = (question or "").strip()[:MAX_QUESTION_CHARS]
        normalised = self.normaliser(raw)
        if not normalised:
            return Reply("fallback", self._say("empty", "text", lang),
                         self._say("empty", "speech", lang), lang=lang)
        escalation = self.emergency.check(raw, normalised)
        if escalation is not None:
            text, speech = escalation.say(lang)
            # The emergency-numbers entry, so a screen can offer it next to the alert.
            return Reply("escalate", text, speech, None, 1.0,
                         suggestions=self._titles((EMERGENCY_ENTRY,), lang),
                         category=escalation.category, lang=lang, normalised=normalised)
        refusal = self.safety.check(normalised)
        if refusal is not None:
            text, speech = refusal.say(lang)
            return Reply("refuse", text, speech, None, 1.0, category=refusal.category,
                         lang=lang, normalised=normalised)
        hits = self.retriever.search(normalised)
        best_score = hits[0].score if hits else 0.0
        # Last look for danger: the question resembles a cry for help more than any KB entry.
        like = self.emergency_examples.search(normalised, limit=1)
        if (like and like[0].score >= EXAMPLE_THRESHOLD and like[0].score > best_score
                and not self.emergency.blocked(normalised)):
            escalation = self.emergency.escalation_for(like[0].entry.id)
            text, speech = escalation.say(lang)
            return Reply("escalate", text, speech, None, 1.0,
                         suggestions=self._titles((EMERGENCY_ENTRY,), lang),
                         category=f"like:{escalation.category}", lang=lang,
                         normalised=normalised)
        # ...and for what must be refused: closer to a refusal example than to any KB entry.
        like = self.refusal_examples.search(normalised, limit=1)
        if (like and like[0].score >= REFUSAL_EXAMPLE_THRESHOLD
                and like[0].score > best_score + REFUSAL_MARGIN
                and self.safety.unblocked(like[0].entry.id, normalised)):
            refusal = self.safety.refusal_for(like[0].entry.id, f"like:{like[0].entry.id}")
            text, speech = refusal.say(lang)
            return Reply("refuse", text, speech, None, 1.0, category=refusal.category,
                         lang=lang, normalised=normalised)
        if hits and best_score >= self.min_confidence:
            best = hits[0]
            entry = best.entry
            return Reply("answer", entry.text("answer", lang), entry.text("speech", lang),
                         entry.id, round(best.score, 3),
                         suggestions=self._titles(entry.related, lang),
                         sources=list(entry.sources), lang=lang, normalised=normalised)
        # Nothing in the KB fits: a danger word the rules did not place still escalates.
        escalation = self.emergency.second_look(normalised)
        if escalation is not None:
            text, speech = escalation.say(lang)
            return Reply("escalate", text, speech, None, 1.0,
                         suggestions=self._titles((EMERGENCY_ENTRY,), lang),
                         category=escalation.category, lang=lang, normalised=normalised)
        suggestions = [{"id": h.entry.id, "title": h.entry.text("title", lang)}
                       for h in hits[:3] if h.score >= SUGGESTION_FLOOR]
        text = self._say("fallback", "text", lang)
        if suggestions:
            lead = self.replies["fallback"]["suggestions"][lang]
            text = f"{text}\n{lead}\n" + "\n".join(f"- {s['title']}" for s in suggestions)
        reply = Reply("fallback", text, self._say("fallback", "speech", lang), None,
                      round(hits[0].score, 3) if hits else 0.0, suggestions, lang=lang,
                      normalised=normalised)
        if log and self.on_unanswered is not None:
            self.on_unanswered(raw, reply)
        return reply

    def explain(self, question: str, limit: int = 5) -> dict[str, Any]:
        """Why `ask()` decides as it does: the normalised form, the words retrieval used,
        the matching rule categories and the best entries with their scores. For KB authors
        tuning data; `posko ask --explain` prints it."""
        raw = (question or "").strip()[:MAX_QUESTION_CHARS]
        normalised = self.normaliser(raw)
        escalation = self.emergency.check(raw, normalised) if normalised else None
        refusal = self.safety.check(normalised) if normalised else None
        words = self.retriever.correct(self.normaliser.content_tokens(normalised.split()))
        hits = self.retriever.search(normalised, limit=limit) if normalised else []
        return {
            "normalised": normalised,
            "retrieval_words": words,
            "emergency": escalation.category if escalation else None,
            "refusal": refusal.category if refusal else None,
            "threshold": self.min_confidence,
            "hits": [{"id": h.entry.id, "score": round(h.score, 3), "matched": h.matched}
                     for h in hits],
            "decision": self._ask(raw, "id", log=False).action,
        }

    def featured(self, lang: str = "id") -> list[dict[str, str]]:
        """The kiosk's suggested questions: featured entries, in KB order."""
        lang = lang if lang in LANGS else "id"
        out = []
        for entry in self.kb.entries.values():
            if entry.featured:
                out.append({"id": entry.id, "question": _question_in(entry.questions, lang),
                            "title": entry.text("title", lang)})
        return out

    def spoken_answers(self) -> Iterator[tuple[str, str, str]]:
        """(entry id, lang, speech) of every entry, for the TTS cache."""
        for entry in self.kb.entries.values():
            for lang in LANGS:
                if lang in entry.speech:
                    yield entry.id, lang, entry.speech[lang]

    def _titles(self, ids: tuple[str, ...], lang: str) -> list[dict[str, str]]:
        return [{"id": i, "title": self.kb.entries[i].text("title", lang)}
                for i in ids if i in self.kb.entries][:3]

    def _say(self, kind: str, part: str, lang: str) -> str:
        texts = self.replies[kind][part]
        return (texts.get(lang) or texts["id"]).strip()


def _question_in(questions: tuple[str, ...], lang: str) -> str:
    english = [q for q in questions if _ENGLISH_HINT.search(q)]
    if lang == "en" and english:
        return english[0]
    indonesian = [q for q in questions if q not in english]
    return (indonesian or list(questions))[0]


def _check_replies(replies: dict[str, Any]) -> None:
    problems = []
    for kind, parts in (("fallback", ("text", "speech", "suggestions")), ("empty", ("text", "speech"))):
        for part in parts:
            texts = (replies.get(kind) or {}).get(part) or {}
            for lang in LANGS:
                if not isinstance(texts.get(lang), str):
                    problems.append(f"replies.yaml: {kind}.{part}.{lang}: is required")
    if problems:
        raise KbError(problems)


def load_brain(kb_dir: str | Path | None = None, *, min_confidence: float | None = None,
               on_unanswered: UnansweredHook | None = None) -> Brain:
    """Load the KB (default: the shipped one) and build the brain.

    Raises KbError when the KB or a data file is malformed.
    """
    return Brain(load_kb(kb_dir),
                 min_confidence=DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence,
                 on_unanswered=on_unanswered)
