"""The binary heads of the intent model, framed training copies, the held-out training set,
the past / place blockers and the order of the safety layer around them (issue 12)."""

from __future__ import annotations

import math

import pytest

from assistant.augment import framed
from assistant.emergency import EmergencyCheck
from assistant.errors import KbError
from assistant.intent import IntentModel
from assistant.normalise import Normaliser
from assistant.training import frames, head_labels, training_set

# A small training set: three kinds of labels, a few questions each.
SAMPLES = [
    ("berapa biaya sim baru", "sim"), ("syarat bikin sim", "sim"), ("sim mati denda", "sim"),
    ("syarat skck apa saja", "skck"), ("skck online caranya", "skck"),
    ("rumah kebakaran apinya besar", "escalate:fire"), ("gudang terbakar asap hitam", "escalate:fire"),
    ("orang pingsan tidak bangun", "escalate:unconscious"), ("nenek pingsan di jalan", "escalate:unconscious"),
    ("ada orang tenggelam di sungai", "escalate:drowning"), ("anak hanyut di kali", "escalate:drowning"),
    ("nomor hp kapolres berapa", "refuse:phone"), ("gaji polisi berapa", "refuse:salary"),
    ("harga beras sekilo", "none"), ("jadwal kereta besok", "none"),
]


@pytest.fixture(scope="module")
def model() -> IntentModel:
    return IntentModel.train(SAMPLES)


def test_the_alarm_head_pools_every_emergency_label(model, tmp_path) -> None:
    assert model.heads == ["alarm", "wary"]
    # No single label has seen "pingsan" next to "sungai"; the head has seen both as alarms.
    assert model.head("alarm", "orang pingsan di sungai") > model.head("alarm", "syarat sim baru")
    assert model.head("alarm", "rumah terbakar ada orang pingsan") > 0
    assert model.head("alarm", "berapa biaya skck") < 0
    assert model.head("nothing", "sim") == -math.inf
    assert len(model.scores("sim")) == len(model.labels)  # the heads are not labels
    path = tmp_path / "m.npz"
    model.save(path)
    again = IntentModel.load(path)
    assert again is not None and again.heads == model.heads
    assert again.head("alarm", "orang pingsan") == pytest.approx(model.head("alarm", "orang pingsan"))


def test_head_labels_leave_the_harmless_refusals_out() -> None:
    safety = {"categories": {"phone": {"kind": "personal"}, "bribery": {"kind": "crime"},
                             "sport": {"kind": "irrelevant"}},
              "examples": {"phone": ["x"], "bribery": ["y"], "sport": ["z"]}}
    heads = head_labels(safety, {"examples": {"fire": ["a"], "help": ["b"]}})
    assert heads == {"alarm": {"escalate:fire", "escalate:help"},
                     "wary": {"refuse:phone", "refuse:bribery"}}
    only_crime = IntentModel.train(SAMPLES, heads={"alarm": {"escalate:fire"}, "wary": {"refuse:phone"}})
    assert only_crime.head("wary", "nomor hp kapolres") > only_crime.head("wary", "gaji polisi")


def test_framed_copies_put_words_around_the_question() -> None:
    copies = framed("ada orang pingsan", ["pak"], ["sekarang"], n=2)
    assert copies == ["pak ada orang pingsan", "ada orang pingsan sekarang"]
    assert framed("ada orang pingsan", ["pak"], ["sekarang"], n=2) == copies  # deterministic
    assert framed("", ["pak"], [], n=2) == [] and framed("x", [], [], n=2) == []


def test_training_set_frames_only_the_kinds_named_in_the_data() -> None:
    framing = frames({"frames": {"escalate": {"before": ["pak"], "after": ["sekarang"]}}})
    out = training_set([("ada orang pingsan", "escalate:unconscious"), ("syarat sim", "sim")],
                       str.lower, lambda w: True, n_variants=0, framing=framing)
    assert ("pak ada orang pingsan", "escalate:unconscious") in out
    assert ("ada orang pingsan sekarang", "escalate:unconscious") in out
    assert [t for t, label in out if label == "sim"] == ["syarat sim"]
    # KB entries ("answer") and `none` have frames of their own: a story's past words and
    # a hard negative's "tolong pak" around a KB question teach that they decide no kind.
    framing = frames({"frames": {"answer": {"before": ["kemarin"], "after": ["pak"]},
                                 "none": {"before": ["mau tanya"]}}})
    out = training_set([("ada orang pingsan", "escalate:unconscious"), ("syarat sim", "sim"),
                        ("resep rendang", "none")], str.lower, lambda w: True, n_variants=0,
                       framing=framing)
    assert {t for t, label in out if label == "sim"} == {"syarat sim", "kemarin syarat sim",
                                                         "syarat sim pak"}
    assert ("mau tanya resep rendang", "none") in out
    assert [t for t, label in out if label.startswith("escalate:")] == ["ada orang pingsan"]
    with pytest.raises(KbError, match="intents.yaml: frames.entry"):
        frames({"frames": {"entry": {"before": ["pak"]}}})
    with pytest.raises(KbError, match="frames.refuse.after"):
        frames({"frames": {"refuse": {"after": "ya"}}})


def test_held_out_questions_are_kept_out_of_training() -> None:
    from assistant.brain import _training_inputs
    from assistant.data import load_data
    from assistant.kb import load_kb
    from tests.assistant.conftest import FIXTURE_KB

    kb = load_kb(FIXTURE_KB)
    normaliser = Normaliser.from_data()
    question = next(iter(kb.entries.values())).questions[0]
    key, build, _ = _training_inputs(kb, normaliser, load_data("intents"))
    held_key, held_build, _ = _training_inputs(kb, normaliser, load_data("intents"),
                                               holdout=[question.upper()])
    assert key != held_key
    assert normaliser(question) in {t for t, _ in build()}
    # the question and its generated variants are gone
    assert len(held_build()) < len(build())
    assert normaliser(question) not in {t for t, _ in held_build()}


@pytest.fixture(scope="module")
def check() -> tuple[Normaliser, EmergencyCheck]:
    n = Normaliser.from_data()
    return n, EmergencyCheck.from_data(n, n.stopwords)


def test_words_of_place_do_not_override_past_time(check) -> None:
    n, e = check
    assert e.blocked(n("motor saya digondol maling semalam di depan kos"))
    assert not e.blocked(n("ada orang mencurigakan di depan rumah, cara lapornya"))  # place beats a procedure word
    assert not e.blocked(n("kemarin dia pergi, sekarang ada orang pingsan"))  # now beats past


def test_only_the_soft_blockers_let_a_sure_alarm_through(check) -> None:
    n, e = check
    locked = n("kakak saya dikurung suaminya dilarang keluar rumah")
    assert e.blocked(locked)  # "dilarang" asks about a rule elsewhere...
    assert not e.blocked(locked, weak=False)  # ...not a reason to hold back a sure alarm
    for question in ("hukuman orang yang mengurung istrinya", "tahun lalu saya dikurung pacar",
                     "stnk saya ikut terbakar waktu rumah kebakaran", "harga pisau dapur"):
        assert e.blocked(n(question), weak=False), question
    assert not e.blocked(n("hukuman apa ini tolong saya berdarah"), weak=False)  # severe


def test_a_negated_rule_word_is_a_statement(check) -> None:
    n, e = check
    assert not e.blocked(n("kakak saya dikurung suaminya tidak boleh keluar rumah"))
    assert e.check("", n("kakak saya dikurung suaminya tidak boleh keluar rumah")) is not None
    assert e.blocked(n("kembang api tahun baru boleh tidak"))


def test_a_sure_alarm_escalates_past_a_soft_blocker(shipped_brain) -> None:
    import assistant.brain as brain_module

    question = "istri saya dikunci di gudang dilarang keluar"
    assert shipped_brain.ask(question).action == "escalate"
    sure = brain_module.ALARM_SURE
    try:
        brain_module.ALARM_SURE = math.inf  # without the sure alarm the blocker wins
        assert shipped_brain.ask(question).action != "escalate"
    finally:
        brain_module.ALARM_SURE = sure


def test_the_wary_head_refuses_new_phrasings_but_not_placed_questions(shipped_brain) -> None:
    import assistant.brain as brain_module

    # No rule and no single refusal category is sure of these; the pooled head is.
    crimes = ("cara masuk ke database polisi", "gimana caranya dapat nik orang lain")
    assert [shipped_brain.ask(q).action for q in crimes] == ["refuse", "refuse"]
    head, placed = brain_module.WARY_HEAD, brain_module.WARY_PLACED
    try:
        brain_module.WARY_HEAD = math.inf
        assert "refuse" not in [shipped_brain.ask(q).action for q in crimes]
        brain_module.WARY_HEAD = head
        # a question the model places in `none` or an entry is not refused by the head
        assert shipped_brain.ask("syarat jadi polwan").action != "refuse"
        brain_module.WARY_PLACED = math.inf
        brain_module.WARY_HEAD = -0.5  # the head fires on it; only the placed guard stops it
        assert shipped_brain.ask("syarat jadi polwan").action == "refuse"
    finally:
        brain_module.WARY_HEAD, brain_module.WARY_PLACED = head, placed


def test_a_sure_alarm_held_back_by_a_blocker_is_never_refused(shipped_brain) -> None:
    """The weapons rule matches "bawa celurit", "kemarin" holds the alarm back; the intent
    model is sure of a cry for help, so the question is not refused (the emergency detector
    is never overridden by a refusal)."""
    import assistant.brain as brain_module

    question = "kemarin dia datang bawa celurit dan teriak mau membunuh bapak saya"
    assert shipped_brain.safety.check(shipped_brain.normalise(question)) is not None
    assert shipped_brain.ask(question).action != "refuse"
    sure = brain_module.ALARM_SURE
    try:
        brain_module.ALARM_SURE = math.inf
        assert shipped_brain.ask(question).action == "refuse"
    finally:
        brain_module.ALARM_SURE = sure
