"""Kiosk screens in Chromium: no script from MQTT, keyboard never over the field, WCAG AA
contrast on every screen, tappable suggestions, honest ticket screen, labelled time zone."""

from __future__ import annotations

import datetime as dt
import re
import time
from zoneinfo import ZoneInfo

import pytest

from posko import topics
from posko.messages import AssistantEvent
from tests.kiosk_ui.pagecheck import check_screen, wait_js
from tests.kiosk_ui.screencheck import assert_contrast, field_and_keyboard

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def osk_done(page) -> None:
    page.click('#osk .osk-key[data-key="done"]')
    page.wait_for_selector("#osk", state="hidden")


@pytest.mark.broker
def test_an_answer_event_with_markup_or_script_runs_nothing(serve_kiosk, broker, mqtt_client, topic_prefix,
                                                            new_page, artifacts) -> None:
    unit = "kiosk-xss-1"
    kiosk = serve_kiosk(env={"POSKO_MQTT_PORT": str(broker.port), "POSKO_MQTT_TOPIC_ROOT": topic_prefix,
                             "POSKO_POSKO_UNIT_ID": unit}, START_MQTT=True)
    assert kiosk.kiosk.bus.link.wait_connected(5)
    page = new_page(800, 480)
    response = page.goto(kiosk.url + "/tanya")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "object-src 'none'" in csp
    deadline = time.monotonic() + 5
    while kiosk.kiosk.fanout.count() < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    attacker = mqtt_client()  # anyone who can publish on the unit's local broker
    event_topic = topics.assistant_event(unit, topic_prefix)
    attacker.publish(event_topic, AssistantEvent("listening", "evil-1", text="button").to_json(), qos=0)
    wait_js(page, "document.querySelector('[data-test=mic]').getAttribute('aria-pressed') === 'true'")
    payload = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    reply = {"action": "answer", "text": "Biaya **Rp30.000** " + payload,
             "html": '<img src=x onerror="window.pwned=3"><b id="injected">x</b>',
             "sources": ['<img src=x onerror="window.pwned=4">'],
             "suggestions": [{"id": "x", "title": '<img src=x onerror="window.pwned=5">'}]}
    attacker.publish(event_topic, AssistantEvent("answer", "evil-1", reply=reply).to_json(), qos=0)
    page.wait_for_selector('[data-test="answer"] strong')
    page.wait_for_timeout(500)
    assert page.evaluate("window.pwned === undefined")
    assert page.locator('[data-test="answer"] img, [data-test="answer"] script, #injected').count() == 0
    assert "<script>window.pwned=2</script>" in page.text_content('[data-test="answer"]')  # shown as text
    assert page.text_content('[data-test="answer"] strong') == "Rp30.000"
    check_screen(page, artifacts, "tanya-markup-sebagai-teks")


def test_a_rebound_host_is_refused_and_sends_no_alert(serve_kiosk) -> None:
    import requests

    kiosk = serve_kiosk(env={"POSKO_KIOSK_ALLOWED_HOSTS": "kiosk.local"})
    port = kiosk.server.server_port
    evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    answer = requests.post(kiosk.url + "/api/darurat", headers=evil, timeout=10)
    assert answer.status_code == 421
    assert requests.get(kiosk.url + "/", headers={"Host": f"evil.example:{port}"}, timeout=10).status_code == 421
    assert kiosk.kiosk.alerts.undelivered() == []  # nothing was raised
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"kiosk.local:{port}"):
        assert requests.get(kiosk.url + "/", headers={"Host": host}, timeout=10).status_code == 200, host
    # its own name but a foreign page: still refused
    own = {"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"}
    assert requests.post(kiosk.url + "/api/darurat", headers=own, timeout=10).status_code == 403


FIELDS = [  # (page, steps before the field is shown, field selector)
    ("/tanya", [], '[data-test="question"]'),
    ("/cek", [], '[data-test="ticket"]'),
    ("/cek", [], '[data-test="pin"]'),
    ("/lapor", ['[data-test="cat-pencurian"]'], '[data-test="description"]'),
    ("/lapor", ["@where"], '[data-test="location"]'),
    ("/lapor", ["@contact"], '[data-test="name"]'),
    ("/lapor", ["@contact"], '[data-test="phone"]'),
]


def _to_step(page, step: str) -> None:
    page.click('[data-test="cat-pencurian"]')
    page.fill('[data-test="description"]', "motor hilang")
    osk_done(page)
    page.click('[data-test="next"]')
    if step == "@where":
        page.click('[data-test="where-other"]')  # focuses the field itself
        return
    page.click('[data-test="next"]')
    page.click('[data-test="next"]')
    page.click('[data-test="photo-skip"]')


@pytest.mark.parametrize("size", [(800, 480), (1280, 720)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_keyboard_never_covers_the_focused_field(serve_kiosk, new_page, artifacts, size) -> None:
    kiosk = serve_kiosk()
    page = new_page(*size)
    for path, steps, field in FIELDS:
        page.goto(kiosk.url + path)
        for step in steps:
            if step.startswith("@"):
                _to_step(page, step)
            else:
                page.click(step)
        if page.is_hidden("#osk"):
            page.click(field)
        page.wait_for_selector("#osk", state="visible")
        page.wait_for_timeout(150)
        page.click('#osk .osk-key[data-key^="char:"] >> nth=3')  # typing keeps it in view
        page.wait_for_timeout(100)
        m = field_and_keyboard(page, field)
        assert m["active"], f"{path} {field}: focus left the field"
        assert m["field"]["bottom"] <= m["osk"]["top"], f"{path} {field}: keyboard covers the field {m}"
        assert m["field"]["top"] >= m["bar"]["bottom"] - 1, f"{path} {field}: field under the top bar {m}"
        name = re.sub(r"\W+", "-", f"keyboard{path}-{field.split('=')[1]}").strip("-")
        page.screenshot(path=str(artifacts / f"kiosk-{name}-{size[0]}x{size[1]}.png"))
        assert_contrast(page, name)
        osk_done(page)


def test_every_screen_meets_wcag_aa_contrast(serve_kiosk, new_page, artifacts) -> None:
    kiosk = serve_kiosk(START_BRAIN=True)
    kiosk.kiosk.brain.wait(60)
    for lang_switch in (False, True):
        page = new_page(800, 480)
        page.goto(kiosk.url + "/")
        if lang_switch:
            with page.expect_navigation():
                page.click('[data-test="lang"]')
        assert_contrast(page, "beranda")
        for path in ("/tanya", "/cek", "/darurat"):
            page.goto(kiosk.url + path)
            page.wait_for_timeout(300)
            assert_contrast(page, path)
        page.goto(kiosk.url + "/lapor")
        page.click('[data-test="cat-kehilangan"]')
        assert_contrast(page, "lapor-kejadian-keyboard")
        page.fill('[data-test="description"]', "dompet hilang")
        osk_done(page)
        for step in ("where", "when"):
            page.click('[data-test="next"]')
            page.wait_for_selector(f'[data-test="step-{step}"]', state="visible")
            assert_contrast(page, step)
        page.click('[data-test="next"]')
        page.wait_for_selector('[data-test="step-photo"]', state="visible")
        page.wait_for_timeout(500)
        assert_contrast(page, "photo")
        page.click('[data-test="photo-skip"]')
        assert_contrast(page, "contact")
        page.click('[data-test="next"]')
        assert_contrast(page, "review")
        page.click('[data-test="submit"]')
        page.wait_for_selector('[data-test="step-done"]', state="visible")
        assert_contrast(page, "ticket")
        page.goto(kiosk.url + "/tanya")
        page.fill('[data-test="question"]', "biaya skck")
        page.click('[data-test="ask"]')
        wait_js(page, "!document.getElementById('answer').hidden && document.getElementById('answer').getAttribute('aria-busy') === 'false'", 15000)
        assert_contrast(page, "tanya-answer")
        page.close()


def test_no_camera_notice_is_legible_and_points_at_a_real_button(serve_kiosk, chromium, artifacts) -> None:
    """A Chromium without a (fake) camera: the notice reads well and names only what exists."""
    kiosk = serve_kiosk()
    context = chromium.new_context(viewport={"width": 800, "height": 480})
    page = context.new_page()
    # the kiosk's camera is unplugged: getUserMedia is refused
    page.add_init_script("navigator.mediaDevices.getUserMedia = () => "
                         "Promise.reject(new DOMException('no camera', 'NotFoundError'))")
    page.goto(kiosk.url + "/lapor")
    page.click('[data-test="cat-lainnya"]')
    page.fill('[data-test="description"]', "x")
    osk_done(page)
    page.click('[data-test="next"]')
    page.click('[data-test="next"]')
    page.click('[data-test="next"]')
    page.wait_for_selector('[data-test="no-camera"]', state="visible", timeout=10000)
    notice = page.text_content('[data-test="no-camera"]')
    assert page.is_hidden('[data-test="photo-take"]') and page.is_visible('[data-test="photo-skip"]')
    skip = page.text_content('[data-test="photo-skip"]').strip()
    visible_text = page.evaluate("document.querySelector('.photo-area').innerText")
    assert "Ambil foto" not in visible_text  # no pointing at the missing button
    assert skip in notice
    page.screenshot(path=str(artifacts / "kiosk-lapor-5-tanpa-kamera-800x480.png"))
    assert_contrast(page, "no-camera")
    context.close()


def test_fallback_suggestions_are_buttons_that_ask_in_both_languages(serve_kiosk, new_page, artifacts) -> None:
    kiosk = serve_kiosk(START_BRAIN=True)
    kiosk.kiosk.brain.wait(60)
    if kiosk.kiosk.brain.status != "ready":
        pytest.skip(f"the assistant brain is not available in this build: {kiosk.kiosk.brain.error}")
    for lang, question in (("id", "tentang pajak mobil"), ("en", "about car tax")):
        reply = kiosk.kiosk.brain.ask(question, lang)
        if reply["action"] != "fallback" or not reply["suggestions"]:
            pytest.skip(f"the brain answers {question!r} ({reply['action']}); pick another probe")
        page = new_page(800, 480)
        page.goto(kiosk.url + ("/bahasa/en?next=/tanya" if lang == "en" else "/tanya"))
        page.fill('[data-test="question"]', question)
        page.click('[data-test="ask"]')
        page.wait_for_selector('[data-test="suggestion"]')
        titles = page.eval_on_selector_all('[data-test="suggestion"]', "els => els.map(e => e.textContent)")
        assert titles == [s["title"] for s in reply["suggestions"]]
        assert all(t[:1].isupper() for t in titles), titles  # properly cased
        answer_text = page.text_content('[data-test="answer"] .answer-text')
        assert not any(t in answer_text for t in titles)  # not also as a dead list
        check_screen(page, artifacts, f"tanya-saran-{lang}")
        page.click('[data-test="suggestion"] >> nth=0')
        wait_js(page, f"document.getElementById('question').value === {titles[0]!r}")
        wait_js(page, "document.getElementById('answer').getAttribute('aria-busy') === 'false'", 15000)
        expected = kiosk.kiosk.brain.ask(titles[0], lang)
        first = re.sub(r"\*\*", "", expected["text"].splitlines()[0]).lstrip("- ")[:20]
        assert first in page.text_content('[data-test="answer"]')
        page.close()


def test_ticket_screen_says_saved_here_until_the_hub_has_it(serve_kiosk, hub_process, new_page, artifacts) -> None:
    hub = hub_process()
    hub.stop()  # down while the resident submits
    kiosk = serve_kiosk(env={"POSKO_KIOSK_HUB_URL": hub.url, "POSKO_KIOSK_SYNC_INTERVAL_S": "0.2",
                             "POSKO_KIOSK_SYNC_PROBE_S": "0.3", "POSKO_KIOSK_SYNC_BACKOFF_CAP_S": "0.5"},
                        TOKEN_PROVIDER=lambda: hub.token, START_SYNC=True)
    page = new_page(800, 480)
    page.goto(kiosk.url + "/lapor")
    page.click('[data-test="cat-kehilangan"]')
    page.fill('[data-test="description"]', "dompet hilang")
    osk_done(page)
    for _ in range(3):
        page.click('[data-test="next"]')
    page.click('[data-test="photo-skip"]')
    page.click('[data-test="next"]')
    page.click('[data-test="submit"]')
    page.wait_for_selector('[data-test="step-done"]', state="visible")
    done = page.text_content('[data-test="step-done"]')
    assert "tersimpan di kiosk ini" in done and "sudah kami terima" not in done
    assert "diterima" not in done.lower().replace("menunggu", "")
    assert page.locator('[data-test="step-done"] h1 svg').count() == 0  # no green check yet
    assert page.is_visible('[data-test="saved-offline"]') and page.is_hidden('[data-test="saved-received"]')
    check_screen(page, artifacts, "lapor-8-tiket-tersimpan")
    hub.start()  # the link returns: the same screen now says the hub has it
    page.wait_for_selector('[data-test="saved-received"]', state="visible", timeout=30000)
    assert page.is_hidden('[data-test="saved-offline"]')
    assert "diterima pusat komando" in page.text_content('[data-test="saved-received"]')
    assert "WIB" in page.text_content('[data-test="saved-received"]')
    check_screen(page, artifacts, "lapor-8-tiket-diterima")


def test_one_labelled_display_zone_on_the_clock_and_cek(serve_kiosk, hub_process, new_page) -> None:
    hub = hub_process()
    kiosk = serve_kiosk(env={"POSKO_KIOSK_HUB_URL": hub.url, "POSKO_KIOSK_DISPLAY_TZ": "Asia/Makassar"},
                        TOKEN_PROVIDER=lambda: hub.token)
    page = new_page(800, 480)
    page.goto(kiosk.url + "/cek")
    wait_js(page, "document.getElementById('clock').textContent.includes('WITA')")
    shown = re.search(r"(\d{2})[.:](\d{2}) WITA", page.text_content("#clock"))
    assert shown, page.text_content("#clock")
    now = dt.datetime.now(ZoneInfo("Asia/Makassar"))
    assert abs(int(shown.group(1)) * 60 + int(shown.group(2)) - (now.hour * 60 + now.minute)) % 1440 in (0, 1, 1439)
