"""The normaliser: slang, Javanese, English, typos, spelled letters, numbers, elongations."""

from __future__ import annotations

import pytest

from assistant.errors import KbError
from assistant.kb import load_kb
from assistant.normalise import Normaliser, normalise
from tests.assistant.evaluation import load_devset


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # chat abbreviations and slang
        ("gmn cara perpanjang SIM yg udh mati?", "bagaimana cara perpanjang sim yang sudah mati"),
        ("brp biaya skck", "berapa biaya skck"),
        ("sy gak bs dtg, dmn bs online aja dll", "saya tidak bisa dtg dimana bisa online saja dan lain lain"),
        ("nggak tdk ga gk", "tidak tidak tidak tidak"),
        # Javanese function words
        ("piye carane nek sim ilang", "bagaimana cara kalau sim hilang"),
        ("pinten biayane, wis ora iso", "berapa biaya sudah tidak bisa"),
        # Sundanese and Javanese function words and verbs (lexicon.yaml, third round)
        ("sapedah abdi dipaling di hareupeun warung kamari, kudu kumaha",
         "sepeda saya dicuri di depan warung kemarin harus bagaimana"),
        ("SIM abdi parantos kadaluwarsa, kedah ujian deui?", "sim saya sudah kadaluwarsa harus ujian lagi"),
        ("hukumna naon lamun teu puasa", "hukum apa kalau tidak puasa"),
        ("kumaha damang", "bagaimana kabar"),
        ("SIMku rusak kena banyu, njaluk ganti anyar", "simku rusak kena air minta ganti baru"),
        # accents are spelling (sixth round): Sundanese é and Javanese è keep their word
        ("abdi badé ka pasar waé", "saya mau ke pasar saja"),
        ("karèk wae", "karek saja"),
        ("takon kuwi, helmku keri", "tanya itu helmku ketinggalan"),
        ("is petty theft a crime for a wheelchair user", "is pencurian ringan a crime untuk a pengguna kursi roda"),
        # English time words of a story, and the question that follows it
        ("stolen this morning, what do i do now", "dicuri tadi pagi harus apa sekarang"),
        ("robbed yesterday", "dirampok kemarin"),
        # spelled-out letters from speech
        ("pak, bikin es ka ce ka berapa ya", "bapak bikin skck berapa ya"),
        ("es i em a", "sim a"),
        ("ka te pe saya ilang", "ktp saya hilang"),
        ("s t n k hilang", "stnk hilang"),
        ("es teh manis", "es teh manis"),  # letters that spell nothing known stay as they are
        # number words, digit groups, units
        ("seratus sepuluh", "110"),
        ("satu satu dua", "112"),
        ("tiga puluh ribu", "30000"),
        ("seratus dua puluh ribu", "120000"),
        ("dua belas", "12"),
        ("30 rb", "30000"),
        ("Rp30.000", "rp 30000"),
        ("sim c1", "sim c 1"),
        # elongations
        ("tolonggg", "tolong"),
        ("maaaaf pak", "maaf bapak"),
        ("brapaaa", "berapa"),
        # English words map to the same canonical form
        ("how much is an SKCK", "berapa is an skck"),
        ("I lost my wallet", "saya kehilangan dompet"),
        ("driving licence renewal", "sim perpanjang"),
        # expansions to acronyms
        ("surat keterangan catatan kepolisian", "skck"),
        ("kartu keluarga", "kk"),
        ("", ""),
        ("?!...", ""),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_normalise_is_deterministic_and_idempotent_on_real_questions() -> None:
    n = Normaliser.from_data()
    questions = [item.q for item in load_devset()]
    for entry in load_kb().entries.values():
        questions.extend(entry.questions)
    assert len(questions) > 500
    for q in questions:
        once = n(q)
        assert n(q) == once
        assert n(once) == once, (q, once, n(once))


def test_vocabulary_decides_how_elongations_collapse() -> None:
    n = Normaliser.from_data()
    assert n("tinggggal") == "tingal"  # unknown: every long run shrinks to one letter
    n.learn(["tinggal"])
    assert n("tinggggal") == "tinggal"


def test_stopwords_are_removed_only_for_retrieval() -> None:
    n = Normaliser.from_data()
    tokens = n.tokens("pak mau tanya dong syarat skck apa ya")
    assert "pak" not in tokens and "bapak" in tokens
    assert n.content_tokens(tokens) == ["syarat", "skck"]


def test_bad_data_file_is_refused_with_its_name(tmp_path) -> None:
    (tmp_path / "normalise.yaml").write_text("replace:\n  a: b\n  a: c\n", encoding="utf-8")
    from assistant.data import load_data

    with pytest.raises(KbError) as info:
        load_data("normalise", tmp_path)
    assert "normalise.yaml" in str(info.value) and "duplicate key 'a'" in str(info.value)


def test_yaml_booleans_in_the_data_are_refused() -> None:
    with pytest.raises(KbError) as info:
        Normaliser.from_data({"replace": {False: "nomor"}, "stopwords": [True]})
    text = str(info.value)
    assert "normalise.yaml: replace.False" in text and "quote" in text
    assert "stopwords: True" in text


@pytest.mark.parametrize(("raw", "expected"), [
    # ninth round: word families and spelling variants of the lexicon
    ("gudang dijebol", "gudang dibobol"),
    ("sim tmbk", "sim tembak"),
    ("ada sim grts", "ada sim gratis"),
    ("wonten tiyang lebet", "ada orang dalam"),
    ("naha tiasa daptar online", "apakah bisa daftar online"),
    ("muatanana kaleuleuwihi", "muatannya berlebihan"),
    ("pembunuhan karakter", "pencemaran nama baik"),
    ("a pickpocket at the bus station", "a copet at terminal bus"),
    ("where do i start", "mulai dari mana"),
])
def test_ninth_round_words(raw: str, expected: str) -> None:
    from assistant.normalise import normalise
    assert normalise(raw) == expected
