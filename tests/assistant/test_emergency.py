"""The emergency check escalates danger now, and not questions about the past or procedures."""

from __future__ import annotations

import pytest

from assistant.emergency import EmergencyCheck
from assistant.normalise import Normaliser


@pytest.fixture(scope="module")
def check() -> tuple[Normaliser, EmergencyCheck]:
    n = Normaliser.from_data()
    return n, EmergencyCheck.from_data(n, n.stopwords)


def _category(check, question: str) -> str | None:
    n, e = check
    escalation = e.check(question, n(question))
    return escalation.category if escalation else None


@pytest.mark.parametrize(
    ("question", "category"),
    [
        ("Tolong, ada kecelakaan di depan, orangnya berdarah!", "accident"),
        ("rumah tetangga saya kebakaran", "fire"),
        ("ada maling masuk rumah sekarang", "violence"),
        ("anak saya hilang di pasar", "missing_child"),
        ("banjir masuk rumah sudah sepinggang", "flood"),
        ("ada orang pingsan di halte", "unconscious"),
        ("ada anak tenggelam di sungai", "drowning"),
        ("tolonggg", "help"),
        ("TOLONG TOLONG", "help"),
        ("help!", "help"),
        ("there is a fire next door", "fire"),
        ("my child is missing", "missing_child"),
    ],
)
def test_danger_now_is_escalated(check, question: str, category: str) -> None:
    assert _category(check, question) == category


@pytest.mark.parametrize(
    "question",
    [
        "cara melaporkan kecelakaan yang kemarin",
        "saya kehilangan dompet",
        "akta kelahiran anak saya hilang",
        "hp anak saya hilang",
        "tips biar anak gak ilang di keramaian",
        "nomor pemadam kebakaran berapa",
        "cara mencegah kebakaran saat mudik",
        "kembang api tahun baru boleh gak",
        "hukuman pencurian berapa tahun",
        "maling masuk rumah malam hari hukumannya berapa",
        "kalau ada kebakaran di kampung nelpon kemana",
        "tolong jelaskan syarat sim",
        "korban kecelakaan boleh dipindah gak",
        "daerah rawan banjir saat mudik",
    ],
)
def test_near_misses_are_not_escalated(check, question: str) -> None:
    assert _category(check, question) is None


def test_escalation_says_officers_are_alerted_and_to_call_110_112(check) -> None:
    n, e = check
    for question in ("ada kecelakaan, korban berdarah", "tolonggg", "anak saya hilang"):
        escalation = e.check(question, n(question))
        assert escalation is not None
        for lang in ("id", "en"):
            text, speech = escalation.say(lang)
            assert "110" in text and "112" in text and "110" in speech
            assert len(speech.split()) <= 25, speech
        assert "Petugas sedang diberi tahu" in escalation.say("id")[0]


def test_every_category_speech_fits_with_the_common_part(check) -> None:
    _, e = check
    for category in e.categories:
        escalation = e._escalation(category)
        for lang in ("id", "en"):
            assert len(escalation.say(lang)[1].split()) <= 25, (category.name, lang)


def test_intent_model_ranks_the_right_emergency_category(fixture_brain) -> None:
    """The examples of emergency.yaml are labels of the intent model (escalate:<category>)."""
    labels = {label for label in fixture_brain.intent.labels if label.startswith("escalate:")}
    assert labels >= {f"escalate:{c}" for c in ("accident", "fire", "violence", "missing_child",
                                                 "flood", "unconscious", "drowning", "help")}
    for question, category in [("gudang sebelah apinya membesar", "fire"),
                               ("teman saya tenggelam di waduk", "drowning")]:
        top = fixture_brain.intent.rank(fixture_brain.normalise(question), 1)[0]
        assert top.label == f"escalate:{category}", (question, top)


def test_a_question_like_an_example_escalates_when_no_rule_fires(fixture_brain) -> None:
    reply = fixture_brain.ask("pak ada motor nyungsep ke parit pengendaranya gak bangun")
    assert reply.action == "escalate"
    blocked = fixture_brain.ask("kemarin motor nyungsep ke parit, klaim asuransi gimana")
    assert blocked.action != "escalate"


def test_examples_are_not_copied_from_the_dev_set(fixture_brain) -> None:
    from tests.assistant.evaluation import load_devset

    dev = {fixture_brain.normalise(i.q) for i in load_devset()}
    from assistant.data import load_data

    examples = {fixture_brain.normalise(q) for group in load_data("emergency")["examples"].values()
                for q in group}
    assert not dev & examples, sorted(dev & examples)[:5]


def test_malformed_examples_are_refused() -> None:
    from assistant.emergency import examples_kb
    from assistant.errors import KbError

    with pytest.raises(KbError) as info:
        examples_kb({"examples": {"fire": "api"}})
    assert "emergency.yaml: examples.fire" in str(info.value)


@pytest.mark.parametrize(
    "question",
    [
        # a story, then what to do next: "sekarang" belongs to the question (`asks`)
        "tadi siang hp saya dicopet di angkot, sekarang harus ngapain",
        "my phone was stolen at the market this morning, what do i do now",
        "semalam motor saya hilang dari parkiran kos, harus ngapain sekarang",
        # a property crime that is over, the victim asks what to do (the `theft` category)
        "omahku dibobol maling pas ditinggal kondangan, saiki kudu piye",
        "i was robbed what should i do",
        # a duration is no danger now
        "tahun lalu saya jadi korban tabrak lari, sampai sekarang belum ada kabar",
    ],
)
def test_a_story_asking_what_to_do_next_is_not_escalated(check, question: str) -> None:
    assert _category(check, question) is None


@pytest.mark.parametrize(
    ("question", "category"),
    [
        # the danger is still there: a `now` word not attached to the question
        ("tadi malam rumah dibobol, sekarang pencurinya masih di dalam", "violence"),
        ("ada maling di rumah sekarang harus apa", "violence"),
        ("ada kebakaran sekarang harus bagaimana", "fire"),
        ("hp saya dijambret barusan pelakunya kabur ke pasar", "theft"),
        # today after yesterday: "hari ini" is now
        ("kemarin tetangga ribut sama bapak, hari ini dia datang bawa celurit", "violence"),
        # a threat to harm oneself: its "kalau" is no hypothetical
        ("pacar saya ngancam mau loncat dari atap kalau saya pergi", "help"),
    ],
)
def test_danger_still_present_after_a_story_is_escalated(check, question: str,
                                                         category: str) -> None:
    assert _category(check, question) == category


@pytest.mark.parametrize(
    "question",
    [
        # "tolong" before a verb of asking: a favour, not a cry for help
        "kemarin motor saya diserempet mobil, tolong kasih tahu siapa pemilik mobilnya",
        "tahun lalu saya ditahan, sekarang bisa tolong hapus catatan saya dari sistem",
        # an urgent opener before a document errand
        "TOLONG PAK darurat, ktp saya mau habis minggu depan, perpanjangnya di mana",
        "tolong darurat nih, stnk motor mati besok pagi, bayarnya bisa online?",
        "help! my driving licence expired yesterday, where do i renew it",
        # an alarm word inside a noun
        "emergency numbers for fire and ambulance please",
        "dalam keadaan darurat harus telepon nomor berapa",
        # the penalty, not a threat
        "perampok yang masuk rumah lewat jendela diancam berapa tahun",
    ],
)
def test_favours_errands_and_penalties_are_not_escalated(check, question: str) -> None:
    assert _category(check, question) is None


@pytest.mark.parametrize(
    ("question", "category"),
    [
        # a word of harm keeps every alarm word, a document or not
        ("tolong, ada orang pingsan waktu antri bikin sim di satpas", "unconscious"),
        ("tolong kasih tahu polisi, ada orang pingsan di jalan", "unconscious"),
        # a document in a theft still going on
        ("tolong! tas isi ktp saya dijambret barusan, orangnya masih lari ke gang", "theft"),
        ("tolong tolong", "help"),
        # English: a small child alone (no parents)
        ("a little girl is crying alone at the bus stop, no parents around", "missing_child"),
    ],
)
def test_alarm_words_still_escalate_with_harm(check, question: str, category: str) -> None:
    assert _category(check, question) == category


@pytest.mark.parametrize(
    "question",
    [
        # fifth round: preparing before, habits, asking only to know
        "sebelum air sungai meluap, apa saja yang perlu disiapkan di rumah",
        "anak hilang di pasar malam harus lapor ke mana, saya tanya untuk jaga jaga",
        # an errand asked after the story: "sekarang" belongs to the question
        "gudang kami kebakaran tahun lalu, sekarang mengurus bpkb yang ikut terbakar bagaimana",
    ],
)
def test_preparing_and_errands_after_a_story_are_not_escalated(check, question: str) -> None:
    assert _category(check, question) is None


@pytest.mark.parametrize(
    ("question", "category"),
    [
        # a missing child is never held back by a habit
        ("anak saya hilang dari tadi sore, biasanya dia pulang jam empat", "missing_child"),
        ("tolong, air sungai meluap masuk rumah sebelum kami sempat keluar", "flood"),
    ],
)
def test_danger_beside_the_new_blockers_still_escalates(check, question: str,
                                                        category: str) -> None:
    assert _category(check, question) == category


@pytest.mark.parametrize(
    ("question", "category"),
    [
        # sixth round: a heart attack or stroke in English, a birth that bleeds (Sundanese é)
        ("my father has chest pains and cannot speak", "unconscious"),
        ("adi abdi badé ngajuru, getihna kaluar waé", "unconscious"),
        # an adjective "bahaya" beside a cry for help still escalates
        ("tolong ada kebakaran yang paling bahaya, cepat", "fire"),
    ],
)
def test_sixth_round_emergencies(check, question: str, category: str) -> None:
    assert _category(check, question) == category


@pytest.mark.parametrize(
    "question",
    [
        # sixth round: days ago is the past; "paling bahaya" asks how dangerous, no cry
        "dua hari lalu ada yang berkelahi di depan warung, sekarang saya mau lapor",
        "banjir itu yang paling bahaya apanya, kalau terjadi harus bagaimana",
    ],
)
def test_sixth_round_stories_and_preparation_are_not_escalated(check, question: str) -> None:
    assert _category(check, question) is None


@pytest.mark.parametrize(
    ("question", "category"),
    [
        # seventh round: an object left since a time ago is still there (`lasting`)
        ("kardus berkabel tergeletak di lobi kantor sejak 2 jam lalu", "suspicious"),
        ("ana tas aneh nang halte dari tadi pagi ora ana sing duwe", "suspicious"),
        # a missing child beside a question of what to bring still escalates
        ("anak saya hilang di terminal, apa yang harus disiapkan buat lapor", "missing_child"),
    ],
)
def test_seventh_round_emergencies(check, question: str, category: str) -> None:
    assert _category(check, question) == category


@pytest.mark.parametrize(
    "question",
    [
        # seventh round: "sekarang bagaimana" closes a story; a plate owner asked as a favour
        "motor saya dicuri kemarin di pasar, sekarang bagaimana",
        "kemarin mobil saya ditabrak truk yang lari, tolong carikan nama pemilik truknya",
        # a child's outing prepared in advance
        "mau ke pantai bawa cucu, biar dia tidak hilang gimana",
        # a parcel from yesterday's story, no duration up to now
        "kemarin ada paket mencurigakan di kantor, ternyata isinya baju",
    ],
)
def test_seventh_round_stories_and_preparation_are_not_escalated(check, question: str) -> None:
    assert _category(check, question) is None


@pytest.mark.parametrize(
    ("question", "category"),
    [
        # eighth round: breath that fails, a sting or an allergy that swells
        ("nenek saya tidak bisa napas dan wajahnya pucat", "unconscious"),
        ("my wife cannot breathe after eating shrimp", "unconscious"),
        ("anak saya disengat tawon, lehernya membengkak", "unconscious"),
        # a fire in a boarding house or a dormitory; chat spelling of "kebakaran"
        ("ada api di asrama putri, asapnya banyak", "fire"),
        ("kbkrn d pasar skrg", "fire"),
        # a thief gone does not hold back a word of harm; no breath at all
        ("pelakunya sudah kabur tapi bapak saya ditusuk dan berdarah", "violence"),
        ("perampoknya sudah lari tapi satpam ditusuk, darahnya banyak", "violence"),
        ("kakek jatuh di kamar mandi, tidak ada napas", "unconscious"),
        # a worry is no blocker by itself; an attacker gone quiet but still armed
        ("saya khawatir ada yang terluka di dalam rumah yang terbakar", "fire"),
        ("tadi malam suami mengamuk bawa golok, sekarang dia sudah diam tapi masih pegang golok",
         "violence"),
    ],
)
def test_eighth_round_emergencies(check, question: str, category: str) -> None:
    assert _category(check, question) == category


@pytest.mark.parametrize(
    "question",
    [
        # eighth round: a story that asks what to do next, restarts an errand or says the
        # danger is over
        "semalam warung saya dibongkar maling, apa yang harus saya lakukan sekarang",
        "dua tahun lalu rumah kami terbakar dan akta ikut hangus, sekarang mau urus lagi",
        "minggu lalu ibu saya dianiaya ayah tiri, sekarang sudah aman di rumah saya, lapor ke mana",
        "ada maling masuk gudang tapi malingnya sudah pergi, sebaiknya bagaimana",
        "JAMBRET! tas ibu saya ditarik di pasar, jambretnya sudah kabur, harus lapor ke mana",
        # a worry about an event to come, asked as a question of service
        "khawatir ada keributan waktu konser di lapangan, apakah ada pengamanan dari polisi",
        # a child's document, a car hit in traffic
        "ktpne anakku ilang nang pasar",
        "someone hit my car in the parking lot, who owns the plate",
        # how often it happens and what to teach; a service asked for an event to come
        "penculikan anak sering terjadi di sekolah, apa yang perlu diajarkan ke murid",
        "malam tahun baru di alun alun dijaga polisi atau tidak, takut ada keributan",
    ],
)
def test_eighth_round_stories_and_worries_are_not_escalated(check, question: str) -> None:
    assert _category(check, question) is None


@pytest.mark.parametrize(
    ("question", "category"),
    [
        # ninth round: a diver or swimmer who does not come up, in English
        ("my brother jumped off the pier and never came up again", "drowning"),
        ("the snorkel guide says one tourist has not come back up", "drowning"),
        # Javanese: breaking in now
        ("wong loro lagi mbobol warung sebelah saiki", "violence"),
        # other words for taking one's life
        ("pacar saya kirim pesan mau mengakhiri hidupnya malam ini, hpnya mati", "help"),
        ("my colleague said he wants to end his life and left the office", "help"),
    ],
)
def test_ninth_round_emergencies(check, question: str, category: str) -> None:
    assert _category(check, question) == category


@pytest.mark.parametrize(
    "question",
    [
        # ninth round: character assassination is defamation, not a killing
        "pembunuhan karakter oleh rekan kerja di grup kantor, bisa dipidana?",
        # a wall broken through last month, the thief long gone
        "bulan lalu tembok belakang toko dijebol maling, sekarang pelakunya kena pasal apa",
    ],
)
def test_ninth_round_words_are_not_escalated(check, question: str) -> None:
    assert _category(check, question) is None


@pytest.mark.parametrize(
    ("question", "category"),
    [
        # ninth round: a swimmer who has not come up, told with a time of day
        ("we went snorkeling this morning and my son never came back up", "drowning"),
        # breaking in now, in the active voice
        ("ada dua orang lagi membongkar mesin atm di depan indomaret sekarang", "theft"),
        ("pintu toko tetangga sedang dicongkel orang bertopeng", "theft"),
    ],
)
def test_ninth_round_crimes_in_progress_and_divers(check, question: str, category: str) -> None:
    assert _category(check, question) in (category, "violence")


@pytest.mark.parametrize(
    "question",
    [
        # ninth round: unpacking is no break-in; a break-in over, asked what to do
        "lagi membongkar barang pindahan, ktp saya terselip, gimana urusnya",
        "warung saya dicongkel maling tadi malam, sekarang harus apa",
    ],
)
def test_ninth_round_break_ins_over_are_not_escalated(check, question: str) -> None:
    assert _category(check, question) is None


@pytest.mark.parametrize(
    ("question", "category"),
    [
        # ninth round: regional words of drowning, breath and breaking in
        ("tulung, budak abdi tilelep di balong", "drowning"),
        ("mbahku ora iso ambegan, raine pucet", "unconscious"),
        ("aki abdi teu tiasa ngambekan", "unconscious"),
        ("ana maling mlebu omah saiki", "violence"),
    ],
)
def test_ninth_round_regional_emergencies(check, question: str, category: str) -> None:
    assert _category(check, question) == category


@pytest.mark.parametrize("question", [
    # ninth round: a polite English request for help with an errand is no cry for help
    "can you help me get a copy of my police report now",
    "could you help me with the form for my licence",
    "I want you to help me find the nearest Samsat",
])
def test_ninth_round_polite_requests_are_not_cries(check, question: str) -> None:
    assert _category(check, question) is None


@pytest.mark.parametrize("question", [
    "help me! a man is hitting my mother",
    "somebody help me please",
    "help!!",
])
def test_ninth_round_cries_in_english_still_escalate(check, question: str) -> None:
    assert _category(check, question) is not None
