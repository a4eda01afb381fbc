"""The brain's public API (the contract other parts code against) and its decisions."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import assistant as assistant
from assistant import Brain, Reply, load_brain
from assistant.kb import Entry
from tests.assistant.conftest import FIXTURE_KB


def test_package_exports_the_contract() -> None:
    assert assistant.Brain is Brain and assistant.Reply is Reply and assistant.load_brain is load_brain
    with pytest.raises(AttributeError):
        assistant.nothing_here  # noqa: B018


def test_answer_carries_entry_text_sources_and_confidence(fixture_brain) -> None:
    reply = fixture_brain.ask("brp biaya skck", lang="id")
    assert reply.action == "answer" and reply.entry == "skck-biaya"
    assert "Rp30.000" in reply.text and "Rp30.000" in reply.speech
    assert reply.sources == ["PP 76/2020 tentang Jenis dan Tarif PNBP Polri, Lampiran"]
    assert 0 < reply.confidence <= 1
    assert reply.suggestions == [{"id": "skck-syarat", "title": "Syarat membuat SKCK"}]
    data = reply.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert {"action", "text", "speech", "entry", "confidence", "suggestions", "sources"} <= set(data)


def test_english_question_and_english_answer(fixture_brain) -> None:
    id_reply = fixture_brain.ask("how much is an skck")
    en_reply = fixture_brain.ask("how much is an skck", lang="en")
    assert id_reply.entry == en_reply.entry == "skck-biaya"
    assert "issuance fee" in en_reply.text and en_reply.lang == "en"
    assert "Biaya penerbitan" in id_reply.text
    assert fixture_brain.ask("brp biaya skck", lang="xx").lang == "id"


def test_entry_without_english_falls_back_to_indonesian() -> None:
    entry = Entry(id="x", topic="sapaan", title={"id": "Judul"}, questions=("a",) * 8,
                  answer={"id": "Jawaban"}, speech={"id": "Ucapan"}, sources=("s",),
                  checked=dt.date(2026, 1, 1))
    assert entry.text("answer", "en") == "Jawaban" and entry.text("title", "en") == "Judul"


def test_refusal_and_escalation(fixture_brain) -> None:
    refuse = fixture_brain.ask("Gaji pak kapolres berapa sih?")
    assert refuse.action == "refuse" and refuse.entry is None and refuse.category == "salary"
    assert refuse.text.startswith("Maaf") and refuse.sources == []
    escalate = fixture_brain.ask("Tolong, ada kecelakaan di depan, orangnya berdarah!")
    assert escalate.action == "escalate" and escalate.category == "accident"
    assert "110" in escalate.text and "112" in escalate.text
    assert escalate.suggestions == [{"id": "darurat-nomor", "title": "Nomor darurat"}]


def test_emergency_wins_over_a_refusal(fixture_brain) -> None:
    # "alamat ... tetangga" alone would be a refusal (someone's address); the fire is not.
    reply = fixture_brain.ask("alamat rumah tetangga saya kebakaran, tolong")
    assert reply.action == "escalate"


def test_fallback_says_where_to_ask_and_suggests(fixture_brain) -> None:
    reply = fixture_brain.ask("jadwal kereta ke semarang besok")
    assert reply.action == "fallback" and reply.entry is None
    assert "belum tahu" in reply.text and "110" in reply.text
    assert len(reply.suggestions) <= 3
    near = fixture_brain.ask("biaya parkir stasiun berapa")  # shares "biaya" with fee entries
    assert near.action == "fallback"
    assert near.suggestions and all(s["id"] in fixture_brain.kb.entries for s in near.suggestions)
    assert "Mungkin maksud Bapak/Ibu:" in near.text


def test_empty_question(fixture_brain) -> None:
    for question in ("", "   ", "?!"):
        reply = fixture_brain.ask(question)
        assert reply.action == "fallback" and "pertanyaan" in reply.text


def test_unanswered_hook_is_called_only_for_fallbacks() -> None:
    seen: list[tuple[str, str]] = []
    brain = load_brain(FIXTURE_KB, on_unanswered=lambda q, r: seen.append((q, r.action)))
    brain.ask("brp biaya skck")
    brain.ask("tolonggg")
    brain.ask("gaji kapolres")
    brain.ask("harga tiket kereta ke jakarta")
    assert seen == [("harga tiket kereta ke jakarta", "fallback")]


def test_threshold_decides_between_answer_and_fallback() -> None:
    # Above every score (0..1), even after the topic check lowered the threshold for a
    # question naming a document (SKCK).
    from assistant.brain import ON_TOPIC_RELIEF

    strict = load_brain(FIXTURE_KB, min_confidence=1.0 + ON_TOPIC_RELIEF)
    assert strict.ask("skck bawa apa aja").action == "fallback"
    lenient = load_brain(FIXTURE_KB, min_confidence=0.0)
    assert lenient.ask("skck bawa apa aja").action == "answer"


def test_kb_version_get_and_entries(fixture_brain, tmp_path: Path) -> None:
    kb = fixture_brain.kb
    assert len(kb.version) == 64 and kb.get("darurat-nomor") is kb.entries["darurat-nomor"]
    copy = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB, copy)
    path = copy / "sapaan" / "sapaan-halo.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Halo Bapak/Ibu.", "Halo."),
                    encoding="utf-8")
    assert load_brain(copy).kb.version != kb.version


def test_featured_and_spoken_answers(fixture_brain) -> None:
    featured = fixture_brain.featured("id")
    assert {f["id"] for f in featured} == {"skck-biaya", "sim-biaya-baru", "darurat-nomor"}
    assert all(set(f) == {"id", "question", "title"} for f in featured)
    skck = next(f for f in featured if f["id"] == "skck-biaya")
    assert skck["question"] == "Berapa biaya pembuatan SKCK?" and skck["title"] == "Biaya SKCK"
    english = next(f for f in fixture_brain.featured("en") if f["id"] == "skck-biaya")
    assert english["question"] == "how much is an SKCK" and english["title"] == "SKCK fee"
    spoken = list(fixture_brain.spoken_answers())
    assert len(spoken) == 2 * len(fixture_brain.kb.entries)
    assert ("skck-biaya", "id", "Biaya SKCK Rp30.000, dibayar sebagai PNBP.") in spoken


def test_shipped_brain_answers_the_scenarios(shipped_brain) -> None:
    """The resident stories of the brief, against the real KB."""
    skck = shipped_brain.ask("pak, bikin es ka ce ka berapa ya")
    assert skck.action == "answer" and skck.entry == "skck-biaya" and "Rp30.000" in skck.text
    salary = shipped_brain.ask("Gaji pak kapolres berapa sih?")
    assert salary.action == "refuse"
    bribe = shipped_brain.ask("Biar nggak ditilang bayar berapa?")
    assert bribe.action == "refuse" and "Propam" in bribe.text and "Dumas" in bribe.text
    crash = shipped_brain.ask("Tolong, ada kecelakaan di depan, orangnya berdarah!")
    assert crash.action == "escalate"
    numbers = shipped_brain.ask("nomor telepon polisi berapa")
    assert numbers.action == "answer" and numbers.entry == "darurat-nomor"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_a_well_formed_reply(fixture_brain, text: str) -> None:
    reply = fixture_brain.ask(text)
    assert reply.action in ("answer", "refuse", "escalate", "fallback")
    assert 0.0 <= reply.confidence <= 1.0
    assert reply.text and reply.speech
    assert (reply.entry is not None) == (reply.action == "answer")
    json.dumps(reply.to_dict())


def test_huge_input_is_cut_before_any_work(fixture_brain) -> None:
    from assistant.brain import MAX_QUESTION_CHARS

    reply = fixture_brain.ask("tolong " + "lorem ipsum dolor sit amet " * 20_000)
    assert reply.action in ("fallback", "escalate", "answer")
    assert len(reply.normalised) <= 2 * MAX_QUESTION_CHARS  # canonical words may be longer
    assert fixture_brain.ask("brp biaya skck" + " " * 10_000 + "x").entry == "skck-biaya"


def test_explain_shows_the_reasoning_and_logs_nothing() -> None:
    seen: list[str] = []
    brain = load_brain(FIXTURE_KB, on_unanswered=lambda q, r: seen.append(q))
    why = brain.explain("perpnjang sim gmn")
    assert why["normalised"] == "perpnjang sim bagaimana"
    assert why["retrieval_words"] == ["perpanjang", "sim", "bagaimana"]
    assert why["hits"][0]["id"] == "sim-perpanjang" and why["decision"] == "answer"
    assert brain.explain("tolonggg")["emergency"] == "help"
    assert brain.explain("gaji kapolres")["refusal"] == "salary"
    assert brain.explain("harga tiket kereta")["decision"] == "fallback"
    heads = brain.explain("rumah tetangga kebakaran apinya besar")["heads"]
    assert set(heads) == {"alarm", "wary"} and heads["alarm"] > heads["wary"]
    assert seen == []


@pytest.mark.parametrize(
    ("question", "action"),
    [
        ("tetangga saya luka kena pisau", "escalate"),          # no rule places it; harm word
        ("tetangga saya luka kena pisau kemarin, visum dimana", "fallback"),  # blocked: past
        ("harga pisau dapur", "fallback"),                       # a weapon noun is not harm
        ("jadwal kereta api", "fallback"),                       # "api" is not a harm word
        ("tolong info jadwal kereta", "fallback"),               # polite "tolong"
        ("hati hati copet di pasar", "fallback"),                # a warning, not an event
    ],
)
def test_second_look_for_harm_words_only_when_nothing_else_fits(fixture_brain, question,
                                                                action) -> None:
    reply = fixture_brain.ask(question)
    assert reply.action == action, (question, reply.category)
    if action == "escalate":
        # the second look, or the intent model's alarm head that runs before it
        assert reply.category == "danger_word" or reply.category.startswith("model:")
        assert "110" in reply.text


@pytest.mark.parametrize("question", ["resep rendang padang dong", "hasil motogp tadi siapa juaranya",
                                      "nyanyikan lagu anak anak dong pak",
                                      # eighth round: beside a child, still no cry for help
                                      "mau dongeng si kancil buat cucu saya sebelum tidur"])
def test_off_topic_requests_fall_back_politely(shipped_brain, question: str) -> None:
    """Entertainment and sport (safety.yaml kind `offtopic`) are declined as a fallback with
    the category's sentence, never refused, and logged as unanswered like any fallback."""
    seen = []
    brain = shipped_brain
    hook, brain.on_unanswered = brain.on_unanswered, lambda q, r: seen.append((q, r))
    try:
        reply = brain.ask(question)
    finally:
        brain.on_unanswered = hook
    assert reply.action == "fallback", (question, reply.category)
    assert reply.category in ("entertainment", "sport") and reply.text.startswith("Maaf")
    assert seen and seen[0][0] == question


@pytest.mark.parametrize("question", [
    # speech-recogniser text of unclear speech: mostly words nobody trained on
    "maka maka cara membula peskak cikah",
    "apayang harus di lagu kan ketika terdadi kemakaran di rumah",
])
def test_garbled_speech_is_never_refused(shipped_brain, question: str, monkeypatch) -> None:
    reply = shipped_brain.ask(question)
    assert reply.action in ("answer", "fallback"), (question, reply.category)
    # Without the evidence guard the intent model refuses the first one (letters that
    # resemble a crime); the guard is what keeps it out.
    if question.startswith("maka"):
        import assistant.brain as brain_module

        monkeypatch.setattr(brain_module, "REFUSE_EVIDENCE", 0.0)
        assert shipped_brain.ask(question).action == "refuse"


@pytest.mark.parametrize(("question", "entry"), [
    ("Dua bulan lalu warung saya dibobol maling lewat atap, pelakunya sudah tertangkap, "
     "hukumannya berapa", "pidana-pencurian-pemberatan"),
    ("Tahun lalu saya ditipu orang yang janji bisa memasukkan saya jadi pegawai, itu termasuk "
     "penipuan bukan", "pidana-penipuan"),
])
def test_a_story_is_answered_despite_its_many_words(shipped_brain, question: str, entry: str,
                                                    monkeypatch) -> None:
    """A story's words of what happened dilute the score of the entry its question asks for:
    the answer threshold is brain.STORY_RELIEF lower when a word of past time says it is one."""
    reply = shipped_brain.ask(question)
    assert (reply.action, reply.entry) == ("answer", entry), reply.category
    import assistant.brain as brain_module

    # ninth round: the KB's examples lift these stories above the threshold itself, so the
    # relief is checked with the threshold put just above the story's own score
    if reply.confidence >= shipped_brain.min_confidence:
        monkeypatch.setattr(shipped_brain, "min_confidence",
                            reply.confidence + brain_module.STORY_RELIEF / 2)
        assert shipped_brain.ask(question).action == "answer"
    monkeypatch.setattr(brain_module, "STORY_RELIEF", 0.0)
    assert shipped_brain.ask(question).action == "fallback"


def test_a_victims_own_money_is_not_someones_wealth(shipped_brain) -> None:
    reply = shipped_brain.ask("tahun lalu orang yang mengaku petugas bank menelepon, saldo saya "
                              "habis, itu pasal apa")
    assert reply.action != "refuse", reply.category


@pytest.mark.parametrize("question", ["cara jadi polisi", "cara masuk akpol"])
def test_recruitment_falls_back_not_refused(shipped_brain, question: str) -> None:
    """No entry answers how to join the police, and it is no crime (intents.yaml `none`)."""
    assert shipped_brain.ask(question).action == "fallback"


@pytest.mark.parametrize(("question", "category"), [
    # English of the fifth round's lexicon: an overdose, a child in the current, "no one"
    ("my brother took too many pills and will not wake up", "unconscious"),
    ("a child got swept away by the current at the river", "drowning"),
    ("there is no one helping, a man is drowning in the lake", "drowning"),
])
def test_english_emergencies_of_the_fifth_round(shipped_brain, question: str, category: str) -> None:
    reply = shipped_brain.ask(question)
    assert (reply.action, reply.category) == ("escalate", category)


@pytest.mark.parametrize("question", [
    "saya mau melaporkan tetangga yang menipu saya, caranya bagaimana",
    "how do i report my neighbour who cheated me out of money",
])
def test_reporting_someone_who_cheated_you_is_not_refused(shipped_brain, question: str) -> None:
    assert shipped_brain.ask(question).action in ("answer", "fallback")


@pytest.mark.parametrize("question", [
    # ninth round: a price per gram of a metal is no drug deal (the model refused it as drugs)
    "harga perak hari ini berapa per gram",
    "logam mulia antam sekarang per gram berapa",
])
def test_a_metals_price_per_gram_is_not_refused(shipped_brain, question: str) -> None:
    assert shipped_brain.ask(question).action != "refuse"


@pytest.mark.parametrize("question", [
    "harga ganja per gram berapa",
    "beli sabu satu gram di mana",
])
def test_a_drugs_price_per_gram_is_still_refused(shipped_brain, question: str) -> None:
    assert shipped_brain.ask(question).action == "refuse"
