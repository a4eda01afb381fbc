"""Retrieval over the fixture KB: typos, slang, English and speech forms reach the right entry."""

from __future__ import annotations

import pytest

from assistant.retrieve import Stemmer


@pytest.mark.parametrize(
    ("question", "entry"),
    [
        ("bikin skck bayarnya berapa", "skck-biaya"),
        ("pak, bikin es ka ce ka berapa ya", "skck-biaya"),       # speech, spelled letters
        ("biaya skck tiga puluh ribu ya?", "skck-biaya"),         # number words
        ("what is the fee for a police clearance", "skck-biaya"),  # English
        ("berkas buat skck apa aja", "skck-syarat"),
        ("perpanjng sim gmn", "sim-perpanjang"),                  # typo + slang
        ("simku wis mati piye", "sim-perpanjang"),                # Javanese
        ("harga bikin sim motor baru", "sim-biaya-baru"),
        ("dompet sy ilang", "kehilangan-surat"),
        ("nomer telpon polisi brp", "darurat-nomor"),
        ("mau ngadu polisi minta duit", "lapor-propam"),
        ("selamat pagiii pak", "sapaan-halo"),
    ],
)
def test_questions_reach_the_right_entry(fixture_brain, question: str, entry: str) -> None:
    hits = fixture_brain.retriever.search(fixture_brain.normalise(question))
    assert hits and hits[0].entry.id == entry, [(h.entry.id, round(h.score, 2)) for h in hits]
    assert 0.0 < hits[0].score <= 1.0


def test_scores_are_ranked_and_deterministic(fixture_brain) -> None:
    query = fixture_brain.normalise("berapa biaya sim dan skck")
    first = fixture_brain.retriever.search(query)
    assert [h.score for h in first] == sorted((h.score for h in first), reverse=True)
    again = fixture_brain.retriever.search(query)
    assert [(h.entry.id, h.score) for h in first] == [(h.entry.id, h.score) for h in again]


def test_unrelated_question_scores_low(fixture_brain) -> None:
    hits = fixture_brain.retriever.search(fixture_brain.normalise("harga tiket kereta ke jakarta"))
    assert not hits or hits[0].score < fixture_brain.min_confidence


def test_unknown_words_are_corrected_to_kb_words(fixture_brain) -> None:
    retriever = fixture_brain.retriever
    assert retriever.correct(["perpanjng", "kehilngan", "xyzzyq", "sim", "hari", "dibuka"]) == [
        "perpanjang", "kehilangan", "xyzzyq", "sim", "hari", "dibuka"]


@pytest.mark.parametrize(
    ("word", "stem"),
    [("perpanjangan", "panjang"), ("memperpanjang", "panjang"), ("diperpanjang", "panjang"),
     ("kehilangan", "hilang"), ("laporan", "lapor"), ("melaporkan", "lapor"),
     ("biayanya", "biaya"), ("dengan", "dengan"), ("sim", "sim"), ("polisi", "polisi")],
)
def test_stemmer(word: str, stem: str) -> None:
    from assistant.data import load_data

    assert Stemmer.from_data(load_data("normalise")["stem"])(word) == stem


def test_short_real_words_are_not_bent_into_kb_words(shipped_brain) -> None:
    fixed = shipped_brain.retriever.correct(["dibuka", "perpanjng"])
    assert fixed == ["dibuka", "perpanjang"]
    assert "dibuat" in shipped_brain.retriever.vocabulary  # the near word exists in the KB
