"""Early endpointing's policy as pure logic: which words so far may end an utterance before
silence_ms, and after how much silence. The word lists are the shipped data."""

from __future__ import annotations

import pytest

from firmware.voice.endpointing import EndpointRules, Heard, decide, judge, tokens
from firmware.voice.setup import endpoint_rules
from posko.config import load_settings

RULES = endpoint_rules(silence_ms=600, early_end_ms=300, emergency_end_ms=200)


def answer(text: str, entry: str = "skck-biaya", confidence: float = 0.64, named=("skck",),
           docs=("skck",), normalised: str | None = None) -> Heard:
    return Heard(text, "answer", confidence, entry, normalised or text.lower(),
                 frozenset(named), frozenset(docs))


def test_a_complete_confident_question_ends_at_the_shorter_silence() -> None:
    heard = answer("Berapa biaya bikin SKCK?")
    assert judge(heard, RULES).reason == "confident"
    assert decide(270, heard, RULES) is None
    assert decide(300, heard, RULES).end_after_ms == 300


def test_the_trap_berapa_biaya_alone_is_a_confident_answer_about_another_document() -> None:
    """The KB answers "berapa biaya" with the SIM fee (0.59): the entry is about SIM, the
    question names no document, so the resident may still be on the way to "bikin SKCK"."""
    heard = answer("Berapa biaya?", "sim-biaya-baru", 0.59, named=(), docs=("sim",),
                   normalised="berapa biaya")
    assert judge(heard, RULES).reason == "topic-missing"
    assert decide(590, heard, RULES) is None


@pytest.mark.parametrize("text", ["berapa biaya bikin", "syarat untuk", "kantor polisi yang",
                                  "mau ke", "saya mau", "SKCK dan", "what is the fee for",
                                  "how to get the", "berapa biaya bikin..."])
def test_a_sentence_ending_on_an_open_word_waits(text) -> None:
    lang = "en" if text.startswith(("what", "how")) else "id"
    verdict = judge(answer(text), RULES, lang)
    assert verdict.end_after_ms == 600 and verdict.reason.startswith("open-word:")


def test_generic_words_alone_lack_their_topic() -> None:
    heard = answer("bagaimana caranya", "posko-cara-pakai", 0.5, named=(), docs=())
    assert judge(heard, RULES).reason == "generic"
    assert judge(answer("saya kehilangan dompet", "kehilangan-surat-keterangan", 0.78,
                        named=(), docs=()), RULES).reason == "confident"


def test_a_single_word_or_a_weak_answer_waits() -> None:
    assert judge(answer("SKCK", "skck-pengertian", 0.65), RULES).reason == "too-few-words"
    assert judge(answer("apa yang harus dilakukan sekarang", "darurat-banjir", 0.35, named=(),
                        docs=()), RULES).reason == "low-confidence"
    fallback = Heard("jam buka kantor", "fallback", 0.41)
    assert judge(fallback, RULES).reason == "not-an-answer:fallback"
    assert judge(None, RULES).reason == "no-transcript"
    assert judge(Heard(" ... "), RULES).reason == "no-transcript"


def test_an_emergency_ends_sooner_than_an_answer_but_not_on_an_open_word() -> None:
    cry = Heard("Tolong, ada kebakaran di rumah saya!", "escalate", 1.0)
    assert judge(cry, RULES) .end_after_ms == 200 and judge(cry, RULES).reason == "emergency"
    assert decide(210, cry, RULES) is not None
    assert judge(Heard("tolong ada kebakaran di", "escalate", 1.0), RULES).reason == "open-word:di"
    assert judge(Heard("tolong", "escalate", 1.0), RULES).reason == "too-few-words"
    as_answer = EndpointRules.from_data({}, silence_ms=600, early_end_ms=300, emergency_end_ms=0)
    assert judge(cry, as_answer).end_after_ms == 300


def test_silence_ms_stays_the_upper_bound_and_zero_turns_it_off() -> None:
    off = endpoint_rules(silence_ms=600, early_end_ms=0, emergency_end_ms=0)
    assert not off.enabled and off.soonest_ms() == 600
    assert decide(590, answer("Berapa biaya bikin SKCK"), off) is None
    assert judge(Heard("tolong ada kebakaran", "escalate", 1.0), off).reason == "off"
    longer = endpoint_rules(silence_ms=400, early_end_ms=500, emergency_end_ms=450)
    assert not longer.enabled
    assert judge(answer("berapa biaya bikin SKCK"), longer).end_after_ms == 400
    assert RULES.enabled and RULES.soonest_ms() == 200


def test_an_unknown_language_uses_every_list() -> None:
    assert judge(answer("berapa biaya for"), RULES, "fr").reason == "open-word:for"
    assert judge(answer("berapa biaya bikin"), RULES, "fr").reason == "open-word:bikin"


def test_tokens_drop_punctuation_and_case() -> None:
    assert tokens("Berapa biaya bikin SKCK?") == ["berapa", "biaya", "bikin", "skck"]
    assert tokens("...di") == ["di"]


@pytest.mark.parametrize("question,ends", [
    ("berapa biaya", False), ("berapa biaya bikin", False), ("berapa biaya bikin SKCK", True),
    ("syarat bikin SIM", True), ("bagaimana cara", False), ("saya kehilangan dompet", True),
    ("tolong ada kecelakaan", True), ("apa yang harus dilakukan", False), ("halo", False),
    ("apa yang harus dilakukan ketika terjadi kebakaran di rumah", True)])
def test_with_the_real_brains_replies(real_brain, question, ends) -> None:
    """The shipped KB's replies to fragments and to whole questions (typed, no ASR)."""
    reply = real_brain._ask(question, "id", log=False).to_dict()
    named = real_brain.topics.named(reply["normalised"])
    docs = real_brain.topics.entry_docs(reply["entry"]) if reply["entry"] else frozenset()
    heard = Heard.from_reply(question, reply, named, docs)
    assert (judge(heard, RULES).end_after_ms < 600) is ends, judge(heard, RULES)


def test_the_rules_come_from_the_voice_settings(tmp_path) -> None:
    base = {"POSKO_POSKO_STATE_DIR": str(tmp_path)}
    rules = endpoint_rules(load_settings(None, environ=base))
    assert (rules.silence_ms, rules.early_end_ms, rules.emergency_end_ms) == (600, 300, 200)
    assert "bikin" in rules.lang_words("id").open_words and "for" in rules.lang_words("en").open_words
    off = endpoint_rules(load_settings(None, environ={**base, "POSKO_VOICE_EARLY_END_MS": "0",
                                                      "POSKO_VOICE_EARLY_END_EMERGENCY_MS": "0"}))
    assert not off.enabled
