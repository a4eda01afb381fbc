"""The learned intent model, the variants it is trained on, the lexicon and the topic check."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.augment import drop_vowels, short_ending, variants
from assistant.brain import shipped_training_inputs
from assistant.errors import KbError
from assistant.intent import SHIPPED_MODEL, IntentModel, char_ngrams, fingerprint, obtain
from assistant.normalise import Normaliser

SAMPLES = [("berapa biaya sim", "sim"), ("biaya bikin sim baru", "sim"),
           ("syarat skck apa", "skck"), ("skck syarat bikin", "skck"),
           ("harga tiket kereta", "none"), ("jadwal kereta api", "none")]


def test_variants_are_deterministic_and_respell_like_chat() -> None:
    assert drop_vowels("perpanjang") == "prpnjng"
    assert short_ending("biayanya") == "biayany"
    first = variants("berapa biaya perpanjang sim", 3)
    assert first == variants("berapa biaya perpanjang sim", 3)
    assert len(first) == 3 and "berapa biaya perpanjang sim" not in first


def test_char_ngrams_match_scikit_learns_char_wb() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()
    for text in ("sim c baru", "a", "perpanjang skck 2026"):
        assert char_ngrams(text) == analyzer(text)


def test_model_ranks_by_spelling_it_never_saw_and_survives_save_and_load(tmp_path) -> None:
    model = IntentModel.train(SAMPLES)
    assert model.rank("brp biaya sm", 1)[0].label == "sim"
    assert model.rank("syrt skck", 1)[0].label == "skck"
    path = tmp_path / "m.npz"
    model.save(path)
    again = IntentModel.load(path)
    assert again is not None and again.trained_on == fingerprint(SAMPLES)
    assert list(again.scores("syrt skck")) == pytest.approx(list(model.scores("syrt skck")))


def test_a_changed_training_set_is_trained_again_and_cached(tmp_path) -> None:
    absent = tmp_path / "absent.npz"
    first = obtain(fingerprint(SAMPLES), lambda: SAMPLES, tmp_path, shipped=absent)
    assert list(tmp_path.glob("intent-*.npz"))
    changed = [*SAMPLES, ("denda helm", "helm"), ("tidak pakai helm denda", "helm")]
    second = obtain(fingerprint(changed), lambda: changed, tmp_path, shipped=absent)
    assert "helm" in second.labels and "helm" not in first.labels

    def never() -> list[tuple[str, str]]:
        raise AssertionError("a cached model must not be trained again")

    assert obtain(fingerprint(changed), never, tmp_path, shipped=absent).labels == second.labels


def test_a_cached_model_cut_short_by_a_power_cut_is_trained_again(tmp_path) -> None:
    absent = tmp_path / "absent.npz"
    obtain(fingerprint(SAMPLES), lambda: SAMPLES, tmp_path, shipped=absent)
    [cached] = tmp_path.glob("intent-*.npz")
    assert not list(tmp_path.glob(".*part"))  # written beside it and renamed, nothing left over
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])  # a cut write
    assert IntentModel.load(cached) is None
    again = obtain(fingerprint(SAMPLES), lambda: SAMPLES, tmp_path, shipped=absent)
    assert again.rank("syrt skck", 1)[0].label == "skck"
    assert IntentModel.load(cached) is not None  # and the cache is whole again


def test_shipped_model_was_trained_on_the_shipped_kb() -> None:
    """Edit the KB or a data file without `python -m assistant.intent` and this fails."""
    model = IntentModel.load(SHIPPED_MODEL)
    assert model is not None
    assert model.trained_on == shipped_training_inputs()[0]


def test_lexicon_maps_regional_words_and_refuses_contradictions() -> None:
    n = Normaliser.from_data()
    assert n("budak abdi leungit") == "anak saya hilang"
    assert n("sim c bru brp") == "sim c baru berapa"
    with pytest.raises(KbError, match="lexicon.yaml: x.piye"):
        Normaliser.from_data(lexicon={"x": {"piye": "apa"}})


def test_named_document_must_match_the_entry(shipped_brain) -> None:
    reply = shipped_brain.ask("stnk saya ikut terbakar waktu rumah kebakaran")
    assert reply.action == "answer" and reply.entry == "kehilangan-stnk"


def test_victim_first_and_where_to_pay(shipped_brain) -> None:
    assert shipped_brain.ask("hp saya dicuri").entry == "kehilangan-hp"
    text = shipped_brain.ask("hp saya dicuri").text
    assert "Lapor" in text and "SIM" in text
    assert shipped_brain.ask("kena tilang bayar di mana").entry == "tilang-bayar"


def test_emergency_is_never_overridden_by_a_refusal(shipped_brain) -> None:
    for q in ("teman saya dikunci di kamar oleh pacarnya", "ada tas mencurigakan di depan gereja",
              "ada anak kecil menangis sendirian mencari ibunya", "rumah dilempari batu dari tadi"):
        assert shipped_brain.ask(q).action == "escalate", q
    assert shipped_brain.ask("tolong cek nik tetangga saya").action == "refuse"


def test_refusal_is_one_sentence_with_the_offer(shipped_brain) -> None:
    reply = shipped_brain.ask("cara bikin surat kehilangan palsu buat klaim asuransi")
    assert reply.action == "refuse"
    assert reply.text.count(".") == 1 and "SKCK" in reply.text and "\n" not in reply.text


def test_expired_entry_is_not_answered_as_current(fixture_brain) -> None:
    from assistant import load_brain

    brain = load_brain(today=lambda: dt.date(2026, 12, 1))
    old = brain.ask("operasi lilin 2025 kapan")
    assert old.entry == "nataru-operasi-lilin" and old.category == "expired"
    assert old.text.startswith("**Catatan:**") and "2026-01-02" in old.text
    during = load_brain(today=lambda: dt.date(2025, 12, 24)).ask("operasi lilin 2025 kapan")
    assert during.category is None and not during.text.startswith("**Catatan:**")
