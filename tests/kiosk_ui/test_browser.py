"""The kiosk screens in Debian's Chromium at 800x480 and 1280x720 (Playwright).

Every screen is screenshot to tests/artifacts/kiosk-*.png and checked for horizontal
overflow, touch targets >= 48 px, text >= 18 px and console errors.
"""

from __future__ import annotations

import re
import time

import pytest

from posko import topics
from posko.messages import AssistantCommand, AssistantEvent
from tests.kiosk_ui.pagecheck import check_screen, wait_js

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SIZES = [(800, 480), (1280, 720)]
TICKET_RE = re.compile(r"^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}$")


def osk_type(page, text: str) -> None:
    """Type with the on-screen keyboard, key by key (the kiosk has no physical keyboard)."""
    for ch in text:
        page.click(f'#osk .osk-key[data-key="char:{ch}"]')


def osk_done(page) -> None:
    page.click('#osk .osk-key[data-key="done"]')
    page.wait_for_selector("#osk", state="hidden")


def wait_until(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def visible(page, test_id: str) -> None:
    page.wait_for_selector(f'[data-test="{test_id}"]', state="visible", timeout=5000)


def linked_kiosk(serve_kiosk, broker, topic_prefix: str, unit: str, **config):
    """A kiosk whose MQTT link to the session broker is up, under this test's own topic root."""
    kiosk = serve_kiosk(env={"POSKO_MQTT_PORT": str(broker.port), "POSKO_MQTT_TOPIC_ROOT": topic_prefix,
                             "POSKO_POSKO_UNIT_ID": unit}, START_MQTT=True, **config)
    assert kiosk.kiosk.bus.link.wait_connected(5)
    return kiosk


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_home_tanya_cek_darurat_screens_fit_and_read(serve_kiosk, new_page, artifacts, size) -> None:
    kiosk = serve_kiosk(START_BRAIN=True)
    kiosk.kiosk.brain.wait(60)
    page = new_page(*size)
    page.goto(kiosk.url + "/")
    visible(page, "go-lapor")
    assert page.text_content('[data-test="posko-name"]') == "Posko Alun-alun"
    assert re.search(r"\d{2}[.:]\d{2}", page.text_content("#clock"))
    # nothing listens at the hub URL: the indicator must say offline, not guess online
    page.wait_for_selector('#link-status[data-state="offline"]', timeout=8000)
    check_screen(page, artifacts, "beranda")
    for path, name in (("/tanya", "tanya"), ("/cek", "cek"), ("/darurat", "darurat")):
        page.goto(kiosk.url + path)
        page.wait_for_load_state("networkidle") if path != "/tanya" else page.wait_for_timeout(300)
        check_screen(page, artifacts, name)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_lapor_whole_flow_with_fake_camera_take_retake_and_keyboard(serve_kiosk, new_page, artifacts, size) -> None:
    kiosk = serve_kiosk()
    page = new_page(*size)
    page.goto(kiosk.url + "/")
    with page.expect_navigation():
        page.click('[data-test="go-lapor"]')
    visible(page, "step-category")
    wait_js(page, "document.getElementById('progress-text').textContent !== ''")
    assert page.text_content("#progress-text") == "Langkah 1 dari 7"
    check_screen(page, artifacts, "lapor-1-kategori")
    page.click('[data-test="cat-pencurian"]')

    visible(page, "step-what")
    page.click('[data-test="description"]')
    visible(page, "step-what")
    page.wait_for_selector("#osk", state="visible")
    osk_type(page, "motor beat hitam hilang")
    check_screen(page, artifacts, "lapor-2-keyboard")
    osk_done(page)
    assert page.input_value('[data-test="description"]') == "motor beat hitam hilang"
    check_screen(page, artifacts, "lapor-2-kejadian")
    page.click('[data-test="next"]')

    visible(page, "step-where")
    check_screen(page, artifacts, "lapor-3-tempat")
    page.click('[data-test="where-other"]')
    page.wait_for_selector("#osk", state="visible")
    osk_type(page, "pasar")
    osk_done(page)
    page.click('[data-test="next"]')

    visible(page, "step-when")
    check_screen(page, artifacts, "lapor-4-waktu")
    page.click('[data-test="when-60"]')
    page.click('[data-test="next"]')

    visible(page, "step-photo")
    wait_js(page, "document.getElementById('video').videoWidth > 0", timeout=10000)
    check_screen(page, artifacts, "lapor-5-kamera")
    page.click('[data-test="photo-take"]')
    visible(page, "snapshot")
    check_screen(page, artifacts, "lapor-5-foto")
    page.click('[data-test="photo-retake"]')
    visible(page, "video")
    assert page.is_hidden('[data-test="snapshot"]')
    page.click('[data-test="photo-take"]')
    visible(page, "photo-use")
    page.click('[data-test="photo-use"]')

    visible(page, "step-contact")
    page.click('[data-test="name"]')
    osk_type(page, "sari")
    osk_done(page)
    page.click('[data-test="phone"]')
    osk_type(page, "081234567890")
    osk_done(page)
    page.click('[data-test="next"]')  # without consent: refused with a clear message
    assert page.is_visible('[data-test="form-error"]')
    page.click('[data-test="consent-label"]')
    check_screen(page, artifacts, "lapor-6-kontak")
    page.click('[data-test="next"]')

    visible(page, "step-review")
    review = page.text_content("#review")
    assert "Pencurian" in review and "motor beat hitam hilang" in review and "pasar" in review
    assert "1 foto" in review and "081234567890" in review
    assert page.text_content('[data-test="ticket"]') == ""  # nothing before the commit
    check_screen(page, artifacts, "lapor-7-periksa")
    page.click('[data-test="submit"]')

    visible(page, "step-done")
    ticket = page.text_content('[data-test="ticket"]')
    pin = page.text_content('[data-test="pin"]')
    assert TICKET_RE.match(ticket) and re.fullmatch(r"\d{4}", pin)
    assert page.locator('[data-test="qr"] svg').count() == 1
    visible(page, "saved-offline")  # the hub is unreachable in this test: say so
    check_screen(page, artifacts, "lapor-8-tiket")

    items = kiosk.kiosk.outbox.list()
    assert len(items) == 1
    item = items[0]
    assert item.ticket == ticket.replace("-", "") and item.body["pin"] == pin
    assert item.body["category"] == "pencurian"
    assert item.body["location"] == {"text": "pasar"}
    assert item.body["reporter"] == {"name": "sari", "phone": "+6281234567890"}
    assert len(item.photos) == 1 and item.body["photos"] == [item.photos[0]["sha256"]]
    photo = kiosk.kiosk.outbox.read_photo(item.photos[0]["sha256"])
    assert photo[:2] == b"\xff\xd8"  # stored as JPEG
    page.click('[data-test="finish"]')
    page.wait_for_url(kiosk.url + "/")


def test_lapor_skip_photo_defaults_to_this_posko_and_now(serve_kiosk, new_page, artifacts) -> None:
    kiosk = serve_kiosk()
    page = new_page(800, 480)
    page.goto(kiosk.url + "/lapor")
    page.click('[data-test="cat-kehilangan"]')
    page.fill('[data-test="description"]', "dompet coklat hilang di dekat panggung")
    osk_done(page)
    page.click('[data-test="next"]')
    visible(page, "step-where")
    page.click('[data-test="next"]')
    visible(page, "step-when")
    page.click('[data-test="next"]')
    visible(page, "step-photo")
    page.click('[data-test="photo-skip"]')
    visible(page, "step-contact")
    page.click('[data-test="next"]')
    visible(page, "step-review")
    assert "Tidak ada" in page.text_content("#review")
    page.click('[data-test="submit"]')
    visible(page, "step-done")
    item = kiosk.kiosk.outbox.list()[0]
    assert item.photos == [] and item.body["photos"] == []
    assert item.body["location"] == {"text": "Posko Alun-alun"}
    assert "reporter" not in item.body
    age = time.time() - __import__("datetime").datetime.fromisoformat(item.body["occurred_at"]).timestamp()
    assert 0 <= age < 120
    assert not page.console_errors


def test_cek_laporan_online_then_offline_shows_last_known_state(serve_kiosk, hub_process, new_page, artifacts) -> None:
    hub = hub_process()
    kiosk = serve_kiosk(env={"POSKO_KIOSK_HUB_URL": hub.url, "POSKO_KIOSK_SYNC_INTERVAL_S": "0.2",
                             "POSKO_KIOSK_SYNC_PROBE_S": "0.5"},
                        TOKEN_PROVIDER=lambda: hub.token, START_SYNC=True)
    box = kiosk.kiosk.outbox
    synced = box.submit({"category": "pencurian", "description": "motor hilang",
                         "occurred_at": "2026-11-20T21:10:00+07:00", "location": {"text": "Posko"}})
    kiosk.kiosk.worker.wake()
    deadline = time.monotonic() + 10
    while box.get(synced.id).state != "synced" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert box.get(synced.id).state == "synced"
    hub.set_state(synced.id, "diverifikasi", "Petugas sudah menghubungi Anda")  # an officer's step

    page = new_page(800, 480)
    page.goto(kiosk.url + "/cek")
    page.wait_for_selector('#link-status[data-state="online"]', timeout=5000)
    page.click('[data-test="ticket"]')
    osk_type(page, synced.ticket[:4] + "-" + synced.ticket[4:])
    osk_done(page)
    page.click('[data-test="pin"]')
    osk_type(page, synced.pin)
    osk_done(page)
    page.click('[data-test="check"]')
    visible(page, "cek-result")
    assert page.text_content('[data-test="cek-state"]') == "Diverifikasi"
    assert "menghubungi" in page.text_content('[data-test="cek-note"]')
    # The hub's time of the officer's step, in the display zone (WIB), labelled.
    import datetime as _dt
    from zoneinfo import ZoneInfo

    shown = page.text_content('#cek-updated')
    assert shown.endswith(" WIB"), shown
    when = _dt.datetime.strptime(shown[:-4], "%d-%m-%Y %H:%M").replace(tzinfo=ZoneInfo("Asia/Jakarta"))
    assert abs((_dt.datetime.now(_dt.UTC) - when).total_seconds()) < 180, shown
    assert "sudah memeriksa" in page.text_content('[data-test="cek-state-note"]')
    assert page.is_hidden('[data-test="cek-offline"]')
    check_screen(page, artifacts, "cek-online")

    hub.stop()  # the link goes down
    page.goto(kiosk.url + "/cek")
    page.fill('[data-test="ticket"]', synced.ticket.lower())
    page.fill('[data-test="pin"]', synced.pin)
    page.click('[data-test="check"]')
    visible(page, "cek-offline")
    assert "offline" in page.text_content('[data-test="cek-offline"]')
    page.wait_for_selector('#link-status[data-state="offline"]', timeout=5000)
    assert page.text_content('[data-test="cek-state"]') == "Diverifikasi"  # last known
    check_screen(page, artifacts, "cek-offline")

    # a report made here that never reached the hub: offline, it says it is waiting
    waiting = box.submit({"category": "lainnya", "description": "x",
                          "occurred_at": "2026-11-20T21:10:00+07:00", "location": {"text": "Posko"}})
    page.fill('[data-test="ticket"]', waiting.ticket)
    page.fill('[data-test="pin"]', waiting.pin)
    page.click('[data-test="check"]')
    wait_js(page, "document.getElementById('cek-state').textContent.includes('Menunggu')")
    # a wrong PIN reveals nothing, online or not
    page.fill('[data-test="pin"]', "0000" if waiting.pin != "0000" else "1111")
    page.click('[data-test="check"]')
    visible(page, "cek-error")
    assert page.is_hidden('[data-test="cek-result"]')
    assert not page.console_errors


@pytest.mark.broker
def test_tanya_mic_publishes_listen_and_shows_transcript_and_answer(serve_kiosk, broker, mqtt_client,
                                                                    topic_prefix, new_page, artifacts) -> None:
    unit = "kiosk-tanya-1"
    kiosk = linked_kiosk(serve_kiosk, broker, topic_prefix, unit)
    agent = mqtt_client()
    agent.subscribe(topics.assistant_command(unit, topic_prefix))
    page = new_page(800, 480)
    page.goto(kiosk.url + "/tanya")
    wait_until(lambda: kiosk.kiosk.fanout.count() >= 1)  # the page's event stream is open
    # Hold the kiosk server's answer to /api/listen back until the unit's first words are on
    # screen: that answer arriving late must not wipe them (a race seen on a loaded machine).
    held = []
    page.route("**/api/listen", lambda route: held.append((route, route.fetch())))
    page.click('[data-test="mic"]')
    while not held:
        page.wait_for_timeout(50)
    cmd = AssistantCommand.from_json(agent.expect(5).payload)
    assert cmd.command == "listen" and cmd.session
    event_topic = topics.assistant_event(unit, topic_prefix)
    agent.publish(event_topic, AssistantEvent("partial", cmd.session, text="bikin es ka").to_json(), qos=0)
    wait_js(page, "document.getElementById('transcript').textContent.includes('bikin es ka')")
    route, response = held[0]
    route.fulfill(response=response)
    page.wait_for_timeout(300)
    assert "bikin es ka" in page.text_content('[data-test="transcript"]')
    page.unroute("**/api/listen")
    reply = {"action": "answer", "text": "Biaya SKCK **Rp30.000**.\n- KTP\n- KK", "sources": ["PP 76/2020"]}
    agent.publish(event_topic, AssistantEvent("answer", cmd.session, reply=reply).to_json(), qos=0)
    page.wait_for_selector('[data-test="answer"] strong')
    assert page.text_content('[data-test="answer"] strong') == "Rp30.000"
    assert page.locator('[data-test="answer"] li').count() == 2
    # an event of another session (another screen's question) is not shown here
    agent.publish(event_topic, AssistantEvent("partial", "other", text="bukan saya").to_json(), qos=0)
    page.wait_for_timeout(300)
    assert "bukan saya" not in page.text_content('[data-test="transcript"]')
    check_screen(page, artifacts, "tanya-suara")


@pytest.mark.broker
def test_tanya_follows_a_question_started_by_the_physical_button(serve_kiosk, broker, mqtt_client,
                                                                 topic_prefix, new_page) -> None:
    unit = "kiosk-tanya-2"
    kiosk = linked_kiosk(serve_kiosk, broker, topic_prefix, unit)
    agent = mqtt_client()
    page = new_page(800, 480)
    page.goto(kiosk.url + "/tanya")
    wait_until(lambda: kiosk.kiosk.fanout.count() >= 1)
    event_topic = topics.assistant_event(unit, topic_prefix)
    # the unit made this session when its Tanya button was pressed; the page never saw it before
    agent.publish(event_topic, AssistantEvent("listening", "btn-1", text="button").to_json(), qos=0)
    wait_js(page, "document.querySelector('[data-test=mic]').getAttribute('aria-pressed') === 'true'")
    agent.publish(event_topic, AssistantEvent("transcript", "btn-1", text="biaya skck").to_json(), qos=0)
    wait_js(page, "document.getElementById('transcript').textContent.includes('biaya skck')")
    reply = {"action": "answer", "text": "Biaya SKCK **Rp30.000**.", "sources": ["PP 76/2020"]}
    agent.publish(event_topic, AssistantEvent("answer", "btn-1", reply=reply).to_json(), qos=0)
    page.wait_for_selector('[data-test="answer"] strong')
    assert page.text_content('[data-test="answer"] strong') == "Rp30.000"
    assert page.console_errors == []


@pytest.mark.broker
def test_the_physical_button_on_beranda_opens_tanya_and_shows_the_question(serve_kiosk, broker, mqtt_client,
                                                                           topic_prefix, new_page) -> None:
    unit = "kiosk-tanya-3"
    kiosk = linked_kiosk(serve_kiosk, broker, topic_prefix, unit)
    agent = mqtt_client()
    page = new_page(800, 480)
    page.goto(kiosk.url + "/")
    wait_until(lambda: kiosk.kiosk.fanout.count() >= 1)  # Beranda listens for the button
    event_topic = topics.assistant_event(unit, topic_prefix)
    agent.publish(event_topic, AssistantEvent("listening", "btn-3", text="button").to_json(), qos=0)
    page.wait_for_url("**/tanya?follow=btn-3", timeout=10000)
    assert page.get_attribute('[data-test="mic"]', "aria-pressed") == "true"
    # Tanya's own event stream opens a moment after the page: repeat the partial until it shows
    shown = "document.getElementById('transcript').textContent.includes('perpanjang sim')"
    for _ in range(50):
        agent.publish(event_topic, AssistantEvent("partial", "btn-3", text="cara perpanjang sim").to_json(), qos=0)
        if page.evaluate(shown):
            break
        page.wait_for_timeout(200)
    assert page.evaluate(shown)
    reply = {"action": "answer", "text": "SIM **diperpanjang** sebelum habis masa berlakunya.", "sources": ["x"]}
    agent.publish(event_topic, AssistantEvent("answer", "btn-3", reply=reply).to_json(), qos=0)
    page.wait_for_selector('[data-test="answer"] strong')
    assert page.text_content('[data-test="answer"] strong') == "diperpanjang"
    assert page.console_errors == []


def test_tanya_typed_question_uses_the_brain_or_says_it_is_unavailable(serve_kiosk, new_page, artifacts) -> None:
    kiosk = serve_kiosk(START_BRAIN=True)
    kiosk.kiosk.brain.wait(60)
    page = new_page(800, 480)
    page.goto(kiosk.url + "/tanya")
    page.click('[data-test="question"]')
    osk_type(page, "biaya skck")
    osk_done(page)
    page.click('[data-test="ask"]')
    wait_js(page, "!document.getElementById('answer').hidden && "
                           "!document.getElementById('answer').textContent.includes('Sebentar')")
    answer = page.text_content('[data-test="answer"]')
    if kiosk.kiosk.brain.status == "ready":
        reply = kiosk.kiosk.brain.ask("biaya skck", "id")
        first = re.sub(r"\*\*", "", reply["text"].splitlines()[0])
        assert first.lstrip("- ")[:20] in answer
        check_screen(page, artifacts, "tanya-jawaban")
    else:
        assert "tidak tersedia" in answer
        check_screen(page, artifacts, "tanya-tidak-tersedia",
                     allowed_console=("status of 503",))
    # no voice link in this app: the mic says so instead of pretending to listen
    page.click('[data-test="mic"]')
    wait_js(page, "document.getElementById('answer').textContent.includes('suara')")


def test_idle_reset_returns_home_and_clears_every_field(serve_kiosk, new_page, artifacts) -> None:
    kiosk = serve_kiosk(env={"POSKO_KIOSK_IDLE_RESET_S": "3", "POSKO_KIOSK_IDLE_WARN_S": "3"})
    page = new_page(800, 480)
    page.goto(kiosk.url + "/")
    with page.expect_navigation():
        page.click('[data-test="lang"]')  # a visitor switched to English
    page.wait_for_selector("text=Report")
    with page.expect_navigation():
        page.click('[data-test="go-lapor"]')
    page.click('[data-test="cat-kekerasan"]')
    page.fill('[data-test="description"]', "private story of the previous person")
    osk_done(page)
    started = time.monotonic()
    # first "Masih di sini?" with a countdown; a touch keeps everything
    page.wait_for_selector('[data-test="idle-warn"]', state="visible", timeout=8000)
    assert time.monotonic() - started >= 2.5  # not before the idle time
    assert re.search(r"\b[1-3] seconds", page.text_content('[data-test="idle-count"]'))  # counting down
    check_screen(page, artifacts, "masih-di-sini")
    page.click('[data-test="idle-stay"]')
    assert page.is_hidden('[data-test="idle-warn"]')
    assert page.input_value('[data-test="description"]') == "private story of the previous person"
    started = time.monotonic()
    page.wait_for_url(kiosk.url + "/", timeout=12000)
    assert time.monotonic() - started >= 5.5  # idle time plus the countdown
    assert page.is_visible("text=Lapor")  # back in the default language
    page.goto(kiosk.url + "/lapor")
    assert page.input_value('[data-test="description"]') == ""
    assert page.is_visible('[data-test="step-category"]')
    page.go_back()
    page.goto(kiosk.url + "/tanya")
    page.fill('[data-test="question"]', "pertanyaan rahasia")
    page.wait_for_url(kiosk.url + "/", timeout=12000)
    page.goto(kiosk.url + "/tanya")
    assert page.input_value('[data-test="question"]') == ""
    assert kiosk.kiosk.outbox.list() == []  # an unfinished report is never stored
    assert not page.console_errors


def test_english_switch_changes_every_screen(serve_kiosk, new_page, artifacts) -> None:
    kiosk = serve_kiosk()
    page = new_page(1280, 720)
    page.goto(kiosk.url + "/")
    with page.expect_navigation():
        page.click('[data-test="lang"]')
    page.wait_for_selector("text=Ask the Police")
    check_screen(page, artifacts, "beranda-en")
    with page.expect_navigation():
        page.click('[data-test="go-lapor"]')
    wait_js(page, "document.getElementById('progress-text').textContent !== ''")
    assert page.text_content("#progress-text") == "Step 1 of 7"
    assert page.is_visible("text=What would you like to report?")
    check_screen(page, artifacts, "lapor-en")
    with page.expect_navigation():
        page.click('[data-test="lang"]')
    page.wait_for_selector("text=Kejadian apa yang ingin Bapak/Ibu laporkan?")


def test_disk_full_shows_a_clear_error_and_no_ticket(serve_kiosk, tiny_fs, new_page, artifacts) -> None:
    from tests.kiosk_ui.conftest import fill_disk

    kiosk = serve_kiosk(env={"POSKO_KIOSK_OUTBOX_PATH": str(tiny_fs / "outbox")})
    fill_disk(tiny_fs)
    page = new_page(800, 480)
    page.goto(kiosk.url + "/lapor")
    page.click('[data-test="cat-pencurian"]')
    page.fill('[data-test="description"]', "motor hilang di parkiran")
    osk_done(page)
    page.click('[data-test="next"]')
    page.click('[data-test="next"]')
    page.click('[data-test="next"]')
    visible(page, "step-photo")
    wait_js(page, "document.getElementById('video').videoWidth > 0", timeout=10000)
    page.click('[data-test="photo-take"]')
    page.click('[data-test="photo-use"]')
    page.click('[data-test="next"]')
    page.click('[data-test="submit"]')
    visible(page, "step-failed")
    text = page.text_content('[data-test="failure-text"]')
    assert "BELUM tersimpan" in text and "110" in text and "petugas" in text
    assert page.text_content('[data-test="ticket"]') == "" and page.is_hidden('[data-test="step-done"]')
    check_screen(page, artifacts, "lapor-disk-penuh", allowed_console=("status of 507",))
    box = kiosk.kiosk.outbox
    assert box.list() == [] and list(box.photo_dir.iterdir()) == []
    (tiny_fs / "filler").unlink()  # an officer frees space; the resident sends again
    page.click('[data-test="retry"]')
    visible(page, "step-review")
    page.click('[data-test="submit"]')
    visible(page, "step-done")
    assert TICKET_RE.match(page.text_content('[data-test="ticket"]'))
    assert len(box.list()) == 1 and len(box.list()[0].photos) == 1
