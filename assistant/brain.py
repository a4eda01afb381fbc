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

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant import augment
from assistant.data import DATA_DIR, load_data
from assistant.emergency import EmergencyCheck, Escalation
from assistant.errors import KbError
from assistant.intent import Scored, fingerprint, obtain
from assistant.kb import LANGS, Entry, KnowledgeBase, load_kb
from assistant.normalise import Normaliser
from assistant.retrieve import Retriever, Stemmer
from assistant.rules import pad
from assistant.safety import SafetyFilter
from assistant.topics import TopicCheck
from assistant.training import (
    ESCALATE,
    FRAMED,
    NONE,
    REFUSE,
    VARIANTS,
    frames,
    head_labels,
    labelled_questions,
    training_set,
)

ACTIONS = ("answer", "refuse", "escalate", "fallback")
DEFAULT_MIN_CONFIDENCE = 0.25  # held-out sweep (docs/assistant.md): fallback on answerable 3.4 % on split 3
SUGGESTION_FLOOR = 0.12  # fallback suggestions below this score would only confuse
# Longer input is cut: no resident's question is this long, and it bounds the work per ask.
MAX_QUESTION_CHARS = 500
EMERGENCY_ENTRY = "darurat-nomor"
# Decision values of the intent model (LinearSVC: about -1 far from a class, > 0 inside it)
# above which its top label decides; tuned on the dev set and cross-validation, never on the
# frozen split (docs/assistant.md).
INTENT_ESCALATE = 0.0
INTENT_REFUSE = 0.0
INTENT_NONE = 0.0
# An emergency (refusal) label this close to the top label decides even when it is not the
# top one (dev-set sweep: margins of 0.3 gave false escalations, 0.2 none).
ESCALATE_MARGIN = 0.2
REFUSE_MARGIN = 0.2
# When no KB entry reaches the answer threshold (the question would get "I do not know"):
INTENT_ESCALATE_UNANSWERED = -0.45
INTENT_REFUSE_UNANSWERED = -0.4
ON_TOPIC_RELIEF = 0.15  # the answer threshold is this much lower after the topic check dropped entries
# ...and this much lower for a story (a word of past time: "bulan lalu ..., itu kena pasal
# apa"): its many words of what happened dilute the scores of the entry its question asks
# for. Chosen on the held-out old splits (docs/assistant.md, fourth round).
STORY_RELIEF = 0.05
NONE_OVERRULED = 0.6  # a KB entry this sure still answers when "none" is the top label
MODEL_WEIGHT = 0.6  # share of the intent model in an entry's score (the rest: TF-IDF retrieval)
INTENT_CANDIDATES = 8
# Thresholds of the binary heads (intent.HEADS), chosen by cross-validation of the training
# set (bench/assistant_cv.py: the lowest whose out-of-fold false share is <= 0.5 %; fourth
# round: 0.15 / 0.3 / 0.7, third round 0.2 / 0.25 / 0.8), checked
# on the held-out old frozen splits (bench/assistant_holdout.py), never on the frozen split.
ALARM_HEAD = 0.15
WARY_HEAD = 0.3
# A non-refusal top label this sure keeps the wary head silent (fifth round: -0.1, on the
# held-out splits 1-4 no refusal changes from 0.0 to -0.1; residents reporting a neighbour
# who cheated them are no longer refused).
WARY_PLACED = -0.1
# Above this the alarm head is sure (out-of-fold false share <= 0.1 %): only the law
# blockers ("hukuman", "pasal", "syarat") still hold it back, not a past or procedure word.
ALARM_SURE = 0.7
# Evidence before a refusal by the intent model (no rule matched): at least this share of the
# question's content words must be words the model was trained on, or chat shorthand. Text of
# unclear speech ("maka maka cara membula peskak cikah") is mostly unknown words whose letters
# happen to resemble a crime; it falls back (or is answered), never refused.
REFUSE_EVIDENCE = 0.6
_VOWELS = re.compile(r"[aeiou]")
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
                 on_unanswered: UnansweredHook | None = None,
                 today: Callable[[], dt.date] = dt.date.today,
                 cache_dir: str | Path | None = None, holdout: Iterable[str] = ()) -> None:
        self.kb = kb
        self.today = today
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
        intents = load_data("intents")
        key, build, heads = _training_inputs(kb, self.normaliser, intents, holdout)
        self.intent = obtain(key, build, cache_dir, heads=heads)
        self._none = self.intent.labels.index(NONE) if NONE in self.intent.labels else 0
        self.polite = frozenset(self.normaliser(str(w)) for w in intents.get("polite") or [])
        self.topics = TopicCheck(intents.get("documents") or [], kb, self.normaliser)
        self.replies = load_data("replies")
        _check_replies(self.replies)

    def normalise(self, text: str) -> str:
        return self.normaliser(text)

    def ask(self, question: str, lang: str = "id") -> Reply:
        """Answer one question in `lang` ("id" or "en"; anything else means "id")."""
        return self._ask(question, lang, log=True)

    def peek(self, question: str, lang: str = "id") -> Reply:
        """`ask` without logging the question as unanswered: for words heard so far while
        the resident is still speaking (the voice's early endpointing)."""
        return self._ask(question, lang, log=False)

    def _ask(self, question: str, lang: str, log: bool) -> Reply:
        lang = lang if lang in LANGS else "id"
        raw = (question or "").strip()[:MAX_QUESTION_CHARS]
        normalised = self.normaliser(raw)
        if not normalised:
            return Reply("fallback", self._say("empty", "text", lang),
                         self._say("empty", "speech", lang), lang=lang)
        # The safety layer, in a fixed order. 1. Someone in danger: the emergency rules...
        escalation = self.emergency.check(raw, normalised)
        if escalation is not None:
            return self._escalate(escalation, lang, normalised)
        scores = self.intent.scores(normalised)
        ranked = self.intent.rank(normalised, limit=INTENT_CANDIDATES, scores=scores)
        top = ranked[0]
        blocked = self.emergency.blocked(normalised)
        # ...then the intent model: a question most like a cry for help, not about the past
        # or a procedure, escalates before any refusal can see it.
        calm = [t for t in normalised.split() if t not in self.polite]
        alarm_scores = scores if len(calm) == len(normalised.split()) or not calm else \
            self.intent.scores(" ".join(calm))
        alarm = self.intent.rank("", 1, keep=_is_escalation, scores=alarm_scores)[0]
        # Near the top counts only when the top is not "none": an everyday question
        # ("jadwal kereta api") that merely shares letters with a cry for help stays calm.
        best = float(alarm_scores.max())
        calm_top = self.intent.labels[int(alarm_scores.argmax())] == NONE
        # The alarm head pools every category's cries for help: it fires on a phrasing that
        # is no single category's best match yet.
        alarm_head = self.intent.head("alarm", " ".join(calm) or normalised)
        if blocked and alarm_head >= ALARM_SURE:
            blocked = self.emergency.blocked(normalised, weak=False)
        if not blocked and (alarm_head >= ALARM_HEAD or (
                alarm.score >= INTENT_ESCALATE
                and (alarm.score >= best or (not calm_top and alarm.score >= best - ESCALATE_MARGIN)))):
            category = alarm.label[len(ESCALATE):]
            return self._escalate(self.emergency.escalation_for(category), lang, normalised,
                                  label=f"model:{category}")
        # 2. What must be refused: the rules, then the intent model. Not when the intent
        # model is sure of a cry for help that a blocker held back ("kalau saya pergi" in a
        # threat, "kemarin" before what happens today): a refusal never overrides the
        # emergency detector, so such a question goes on to retrieval.
        if alarm_head >= ALARM_SURE and alarm.score >= best:
            return self._retrieve(normalised, scores, ranked, alarm, blocked, lang, raw, log,
                                  wary=None)
        refusal = self.safety.check(normalised)
        wary = self.intent.rank("", 1, keep=_is_refusal, scores=scores)[0]
        # The wary head pools the crime and personal-data refusals: it refuses a phrasing
        # that no single refusal category has seen, unless the model itself places the
        # question inside a KB entry or `none` ("cara daftar jadi polisi").
        placed = not top.label.startswith(REFUSE) and top.score >= WARY_PLACED
        if refusal is None and self._evidence(normalised) and (
                (self.intent.head("wary", normalised) >= WARY_HEAD and not placed) or (
                wary.score >= INTENT_REFUSE and wary.score >= top.score - REFUSE_MARGIN)):
            category = wary.label[len(REFUSE):]
            if self.safety.unblocked(category, normalised):
                refusal = self.safety.refusal_for(category, f"model:{category}")
        if refusal is not None and refusal.kind == "offtopic":
            # Off-topic (a recipe, a match score): no refusal; answered when an entry fits
            # well enough, else the fallback with the category's polite sentence.
            return self._retrieve(normalised, scores, ranked, alarm, blocked, lang, raw, log,
                                  wary=None, said=refusal)
        if refusal is not None:
            text, speech = refusal.say(lang)
            return Reply("refuse", text, speech, None, 1.0, category=refusal.category,
                         lang=lang, normalised=normalised)
        return self._retrieve(normalised, scores, ranked, alarm, blocked, lang, raw, log, wary)

    def _evidence(self, normalised: str) -> bool:
        """Enough evidence for the intent model to refuse (REFUSE_EVIDENCE): a content word
        counts when the model was trained on it, or when it is chat shorthand (fewer than two
        vowels: "dksh", "plpr", "kbur", whose letters the character n-grams do know). What does
        not count is a word that looks like a word and that no training question used
        ("membula", "peskak"): what a speech recogniser makes of unclear speech."""
        content = self.normaliser.content_tokens(normalised.split()) or normalised.split()
        counted = sum(self.intent.known(t) or len(_VOWELS.findall(t)) < 2 for t in content)
        return counted >= REFUSE_EVIDENCE * len(content)

    def _retrieve(self, normalised: str, scores: np.ndarray, ranked: list[Scored], alarm: Scored,
                  blocked: bool, lang: str, raw: str, log: bool, wary: Scored | None,
                  said: Any = None) -> Reply:
        """Step 3 and what follows: an answer, else a second look for danger or a crime,
        else the fallback. `wary`: the best refusal label (None: no refusal may follow)."""
        top = ranked[0]
        # 3. Retrieval: the intent model and the TF-IDF index agree on an entry, and the
        # document the question names (STNK, SKCK, SIM...) is one the entry is about.
        candidates, on_topic = self._candidates(normalised, scores)
        best = candidates[0] if candidates else None
        none_wins = top.label == NONE and top.score >= INTENT_NONE
        # A question naming a document that only some entries are about is a strong sign.
        floor = self.min_confidence - (ON_TOPIC_RELIEF if on_topic else 0.0)
        if STORY_RELIEF and self.emergency.past.search(pad(normalised)):
            floor -= STORY_RELIEF
        # An off-topic category matched (`said`): only an entry this sure still answers.
        if best is not None and best[1] >= floor and not (
                (none_wins or said is not None) and best[1] < NONE_OVERRULED):
            return self._answer(best[0], best[1], lang, normalised)
        # Nothing in the KB fits: a danger word the rules did not place still escalates...
        escalation = self.emergency.second_look(normalised)
        if escalation is not None:
            return self._escalate(escalation, lang, normalised)
        # ...so does one the intent model finds close enough to a cry for help: a question
        # the KB cannot answer loses little by an alert, a missed emergency loses much. Not
        # an off-topic request a rule recognised (`said`: "ceritain dongeng buat anak saya"),
        # whose danger words the second look above has already had.
        if not blocked and said is None and alarm.score >= INTENT_ESCALATE_UNANSWERED:
            category = alarm.label[len(ESCALATE):]
            return self._escalate(self.emergency.escalation_for(category), lang, normalised,
                                  label=f"model:{category}")
        # ...and one nearer to help with a crime or to someone's personal data than to a
        # harmless unknown is refused (an off-topic question may as well fall back).
        if (wary is not None and wary.score >= INTENT_REFUSE_UNANSWERED
                and wary.score >= float(scores[self._none]) and self._evidence(normalised)):
            category = wary.label[len(REFUSE):]
            if (self.safety.unblocked(category, normalised)
                    and self.safety.refusal_for(category).kind in ("crime", "personal")):
                refusal = self.safety.refusal_for(category, f"model:{category}")
                text, speech = refusal.say(lang)
                return Reply("refuse", text, speech, None, 1.0, category=refusal.category,
                             lang=lang, normalised=normalised)
        return self._fallback(normalised, candidates, lang, raw, log, said=said)

    def _fallback(self, normalised: str, candidates: list[tuple[Entry, float]], lang: str,
                  raw: str, log: bool, said: Any = None) -> Reply:
        """The fallback; `said`: an off-topic category (safety.yaml kind `offtopic`) whose
        polite sentence replaces "I do not know yet"."""
        suggestions = [{"id": e.id, "title": e.text("title", lang)}
                       for e, score in candidates[:3] if score >= SUGGESTION_FLOOR]
        text, speech = (said.say(lang) if said is not None else
                        (self._say("fallback", "text", lang), self._say("fallback", "speech", lang)))
        if suggestions:
            lead = self.replies["fallback"]["suggestions"][lang]
            text = f"{text}\n{lead}\n" + "\n".join(f"- {s['title']}" for s in suggestions)
        reply = Reply("fallback", text, speech, None,
                      round(candidates[0][1], 3) if candidates else 0.0, suggestions,
                      category=said.category if said is not None else None, lang=lang,
                      normalised=normalised)
        if log and self.on_unanswered is not None:
            self.on_unanswered(raw, reply)
        return reply

    def _candidates(self, normalised: str,
                    scores: np.ndarray) -> tuple[list[tuple[Entry, float]], bool]:
        """KB entries with a combined score (0..1), best first, after the topic check; and
        whether the topic check kept only entries about a document the question names."""
        hits = self.retriever.search(normalised, limit=INTENT_CANDIDATES)
        intent = {s.label: s.score for s in self.intent.rank(
            normalised, limit=INTENT_CANDIDATES, keep=self.kb.entries.__contains__, scores=scores)}
        retrieval = {h.entry.id: h.score for h in hits}
        scored = []
        for entry_id in {*intent, *retrieval}:
            model = min(1.0, max(0.0, (intent.get(entry_id, -1.0) + 1.0) / 2.0))
            score = MODEL_WEIGHT * model + (1.0 - MODEL_WEIGHT) * retrieval.get(entry_id, 0.0)
            scored.append((self.kb.entries[entry_id], score))
        scored.sort(key=lambda pair: (-pair[1], pair[0].id))
        named = self.topics.named(normalised)
        if named:
            matching = [p for p in scored if self.topics.entry_docs(p[0].id) & named]
            if matching:
                return matching, len(matching) < len(scored)
        return scored, False

    def _answer(self, entry: Entry, score: float, lang: str, normalised: str) -> Reply:
        text, speech = entry.text("answer", lang), entry.text("speech", lang)
        category = None
        today = self.today()
        for kind, applies in (("expired", entry.expired(today)), ("upcoming", entry.upcoming(today))):
            if applies:
                dates = {"from": entry.valid_from, "until": entry.valid_until}
                text = self._say(kind, "text", lang).format(**dates) + "\n" + text
                speech = self._say(kind, "speech", lang).format(**dates) + " " + speech
                category = kind
        return Reply("answer", text, speech, entry.id, round(score, 3),
                     suggestions=self._titles(entry.related, lang), sources=list(entry.sources),
                     category=category, lang=lang, normalised=normalised)

    def _escalate(self, escalation: Escalation, lang: str, normalised: str,
                  label: str | None = None) -> Reply:
        text, speech = escalation.say(lang)
        # The emergency-numbers entry, so a screen can offer it next to the alert.
        return Reply("escalate", text, speech, None, 1.0,
                     suggestions=self._titles((EMERGENCY_ENTRY,), lang),
                     category=label or escalation.category, lang=lang, normalised=normalised)

    def explain(self, question: str, limit: int = 5) -> dict[str, Any]:
        """Why `ask()` decides as it does: the normalised form, the words retrieval used,
        the matching rule categories, the intent model's heads and the best entries with
        their scores. For KB authors
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
            "intent": [{"label": s.label, "score": round(s.score, 3)}
                       for s in (self.intent.rank(normalised, limit) if normalised else [])],
            "heads": {name: round(self.intent.head(name, normalised), 3) if normalised else None
                      for name in self.intent.heads},
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
    for kind, parts in (("fallback", ("text", "speech", "suggestions")), ("empty", ("text", "speech")),
                        ("expired", ("text", "speech")), ("upcoming", ("text", "speech"))):
        for part in parts:
            texts = (replies.get(kind) or {}).get(part) or {}
            for lang in LANGS:
                if not isinstance(texts.get(lang), str):
                    problems.append(f"replies.yaml: {kind}.{part}.{lang}: is required")
    if problems:
        raise KbError(problems)


def _is_escalation(label: str) -> bool:
    return label.startswith(ESCALATE)


def _is_refusal(label: str) -> bool:
    return label.startswith(REFUSE)


def _training_inputs(kb: KnowledgeBase, normaliser: Normaliser, intents: dict[str, Any],
                     holdout: Iterable[str] = (),
                     ) -> tuple[str, Callable[[], list[tuple[str, str]]], dict[str, set[str]]]:
    """(fingerprint, builder, head labels) of the intent model's training set. The fingerprint covers the
    raw labelled questions, the files that shape their normalised form and the variant
    generator, so a shipped model is recognised without normalising ~5 000 questions.
    `holdout`: questions kept out of training (any labelled question that normalises to the
    same text is dropped), for evaluations on held-out questions (bench/assistant_holdout.py)."""
    safety, emergency = load_data("safety"), load_data("emergency")
    pairs = labelled_questions(kb, safety, emergency, intents)
    heads = head_labels(safety, emergency)
    held = {normaliser(q) for q in holdout}
    if held:
        pairs = [p for p in pairs if normaliser(p[0]) not in held]
    stop = normaliser.stopwords
    shaping = [(DATA_DIR / f"{name}.yaml").read_bytes() for name in ("normalise", "lexicon")]
    shaping += [Path(augment.__file__).read_bytes(), str(VARIANTS).encode()]
    framing = frames(intents)
    shaping.append(repr((sorted((k, sorted(v)) for k, v in heads.items()), sorted(framing.items()),
                         FRAMED)).encode())
    key = fingerprint(pairs, *shaping)
    return key, lambda: training_set(pairs, normaliser, lambda w: w not in stop, framing=framing), heads


def shipped_training_inputs() -> tuple[str, Callable[[], list[tuple[str, str]]],
                                       dict[str, set[str]]]:
    """Fingerprint, builder and head labels of the shipped KB's training set (`python -m assistant.intent`
    trains the shipped model on it)."""
    kb = load_kb()
    normaliser = Normaliser.from_data(load_data("normalise"))
    for entry in kb.entries.values():
        for question in entry.questions:
            normaliser.learn(normaliser.tokens(question))
    return _training_inputs(kb, normaliser, load_data("intents"))


def load_brain(kb_dir: str | Path | None = None, *, min_confidence: float | None = None,
               on_unanswered: UnansweredHook | None = None,
               today: Callable[[], dt.date] = dt.date.today,
               cache_dir: str | Path | None = None, holdout: Iterable[str] = ()) -> Brain:
    """Load the KB (default: the shipped one) and build the brain.

    `holdout`: questions the intent model must not be trained on (evaluation only; a model
    trained without them is built, or taken from `cache_dir`).

    `cache_dir` keeps intent models trained for KBs other than the shipped one (a unit's
    state folder), so a new bundle is trained once, not at every start.
    Raises KbError when the KB or a data file is malformed.
    """
    return Brain(load_kb(kb_dir),
                 min_confidence=DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence,
                 on_unanswered=on_unanswered, today=today, cache_dir=cache_dir, holdout=holdout)
