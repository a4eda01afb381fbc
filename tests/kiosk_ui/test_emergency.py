"""Emergency screens in Chromium: exactly one true state, live, never lost, never reset.

Darurat -> Ya, Tanya's emergency reply and the panic button's screen each show one of:
NOT SENT: CALL 110 NOW (red, first, largest) / sent and waiting / acknowledged. The alert
waits in the kiosk's alert box and goes as soon as a path to the hub is up.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from posko import topics
from posko.messages import Alert, AlertAck
from tests.kiosk_ui.conftest import RealHub
from tests.kiosk_ui.pagecheck import check_screen, wait_js
from tests.kiosk_ui.screencheck import assert_contrast

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.timeout(180)]


def shown_state(page) -> str:
    return page.evaluate("""() => ['not-sent', 'sent', 'acked'].filter(s => {
        const e = document.querySelector('[data-test="state-' + s + '"]');
        return e && e.offsetParent !== null; }).join(',')""")


def hub_alerts(hub: RealHub) -> list[tuple]:
    db = sqlite3.connect(f"file:{hub.folder / 'var' / 'hub' / 'hub.db'}?mode=ro", uri=True, timeout=10)
    try:
        return list(db.execute("SELECT id, unit_id, source, text FROM alerts"))
    finally:
        db.close()


def linked(serve_kiosk, broker, topic_prefix, unit, env=None, **config):
    base = {"POSKO_MQTT_PORT": str(broker.port), "POSKO_MQTT_TOPIC_ROOT": topic_prefix,
            "POSKO_POSKO_UNIT_ID": unit, "POSKO_KIOSK_ALERT_RETRY_S": "0.3"}
    base.update(env or {})
    kiosk = serve_kiosk(env=base, START_MQTT=True, **config)
    assert kiosk.kiosk.bus.link.wait_connected(5)
    return kiosk


def test_darurat_not_sent_until_the_hub_has_it_then_sent_then_acknowledged(
        serve_kiosk, broker, mqtt_client, topic_prefix, new_page, artifacts, tmp_path, hub_process) -> None:
    unit = "kiosk-test-1"
    hub = hub_process(unit=unit, start=False)  # not started yet: the uplink is down
    kiosk = linked(serve_kiosk, broker, topic_prefix, unit,
                   env={"POSKO_KIOSK_HUB_URL": hub.url, "POSKO_KIOSK_IDLE_RESET_S": "2",
                        "POSKO_KIOSK_IDLE_WARN_S": "3"},
                   TOKEN_PROVIDER=lambda: hub.token or None)
    officer = mqtt_client()
    officer.subscribe(topics.alert(unit, topic_prefix))
    page = new_page(800, 480)
    page.goto(kiosk.url + "/darurat")
    page.click('[data-test="darurat-yes"]')
    page.wait_for_selector('[data-test="state-not-sent"]', state="visible", timeout=10000)
    assert shown_state(page) == "not-sent"
    # MQTT reached the local broker, but with no bridge up that is not "sent"
    alert = Alert.from_json(officer.expect(5).payload)
    assert alert.source == "kiosk_darurat"
    box = kiosk.kiosk.alerts
    assert box.get(alert.id) is not None and box.get(alert.id).sent_at is None
    # red, first and largest on the screen
    m = page.evaluate("""() => {
      const s = document.querySelector('[data-test="state-not-sent"]');
      const r = s.getBoundingClientRect();
      const title = s.querySelector('.call-now');
      const sizes = [...document.querySelectorAll('#sent *')].filter(e => e.offsetParent && !s.contains(e)
          && !e.closest('.numbers') && e.childNodes.length && [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
          .map(e => parseFloat(getComputedStyle(e).fontSize));
      const others = [...document.querySelectorAll('#sent > *')].filter(e => e.offsetParent && !e.contains(s));
      return {top: r.top, bg: getComputedStyle(s).backgroundColor, size: parseFloat(getComputedStyle(title).fontSize),
              text: title.textContent, max_other: Math.max(0, ...sizes),
              first: others.every(e => e.getBoundingClientRect().top >= r.bottom - 1),
              scroll: document.scrollingElement.scrollHeight, inner: innerHeight,
              page: document.body.innerText};
    }""")
    assert m["bg"] == "rgb(166, 27, 27)" and "110" in m["text"] and "BELUM TERKIRIM" in m["text"]
    assert m["first"] and m["size"] > m["max_other"]
    assert m["scroll"] <= m["inner"], "the Darurat screen must fit 480 px without scrolling"
    for number in ("110", "112", "118", "119", "113"):
        assert number in page.text_content('[data-test="numbers"]')
    assert "Tekan Darurat" not in m["page"] and "Tekan **Darurat**" not in m["page"]
    check_screen(page, artifacts, "darurat-belum-terkirim")
    assert_contrast(page, "darurat-belum-terkirim")
    # the idle reset never throws an unacknowledged emergency away
    page.wait_for_timeout(6500)
    assert page.url.endswith("/darurat") and shown_state(page) == "not-sent"
    assert page.is_hidden('[data-test="idle-warn"]')

    hub.start()  # the uplink returns: the alert goes by itself and the screen says when
    page.wait_for_selector('[data-test="state-sent"]', state="visible", timeout=30000)
    assert shown_state(page) == "sent"
    when = page.text_content('[data-test="sent-when"]')
    assert "WIB" in when and "pusat komando" in when
    rows = hub_alerts(hub)
    assert [(r[0], r[1], r[2]) for r in rows] == [(alert.id, unit, "kiosk_darurat")]
    check_screen(page, artifacts, "darurat-terkirim")
    assert_contrast(page, "darurat-terkirim")

    officer.publish(topics.alert_ack(unit, topic_prefix), AlertAck(alert.id, "Bripka Aziz").to_json())
    page.wait_for_selector('[data-test="state-acked"]', state="visible", timeout=10000)
    assert shown_state(page) == "acked"
    assert "Bripka Aziz" in page.text_content('[data-test="acked-who"]')
    assert "Petugas sudah menerima" in page.text_content('[data-test="state-acked"]')
    check_screen(page, artifacts, "darurat-diterima")
    assert_contrast(page, "darurat-diterima")
    # acknowledged: now the screen may ask "Masih di sini?" and reset
    page.wait_for_selector('[data-test="idle-warn"]', state="visible", timeout=8000)
    check_screen(page, artifacts, "darurat-masih-di-sini")
    assert_contrast(page, "masih-di-sini")
    page.wait_for_url(kiosk.url + "/", timeout=10000)
    assert len(hub_alerts(hub)) == 1  # repeats over both paths made one alert


def test_the_alert_survives_a_kiosk_restart_and_goes_when_the_hub_answers(
        serve_kiosk, tmp_path, new_page, hub_process) -> None:
    unit = "kiosk-test-1"
    hub = hub_process(unit=unit, start=False)
    env = {"POSKO_KIOSK_HUB_URL": hub.url, "POSKO_POSKO_UNIT_ID": unit, "POSKO_KIOSK_ALERT_RETRY_S": "0.3"}
    first = serve_kiosk(env=env, folder=tmp_path / "kiosk", TOKEN_PROVIDER=lambda: hub.token or None)
    page = new_page(800, 480)
    page.goto(first.url + "/darurat")
    page.click('[data-test="darurat-yes"]')
    page.wait_for_selector('[data-test="state-not-sent"]', state="visible", timeout=10000)
    [rec] = first.kiosk.alerts.undelivered()
    first.stop()  # the kiosk app restarts while the link is down
    hub.start()
    second = serve_kiosk(env=env, folder=tmp_path / "kiosk", TOKEN_PROVIDER=lambda: hub.token or None)
    deadline = time.monotonic() + 20
    while second.kiosk.alerts.get(rec.id).hub_at is None:
        assert time.monotonic() < deadline, "the stored alert was not sent after the restart"
        time.sleep(0.1)
    assert [r[0] for r in hub_alerts(hub)] == [rec.id]
    page.goto(second.url + f"/darurat?alert={rec.id}")
    page.wait_for_selector('[data-test="state-sent"]', state="visible", timeout=10000)


def test_the_panic_button_opens_its_alert_on_any_screen(serve_kiosk, broker, mqtt_client, topic_prefix,
                                                         new_page, artifacts) -> None:
    unit = "kiosk-panic-1"
    kiosk = linked(serve_kiosk, broker, topic_prefix, unit)
    agent = mqtt_client()
    page = new_page(800, 480)
    page.goto(kiosk.url + "/cek")
    deadline = time.monotonic() + 5
    while kiosk.kiosk.fanout.count() < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    alert = Alert(id="9b2f0a52-0d7e-4c61-9a43-2f1d1c6f3a10", unit=unit, posko="Posko Alun-alun",
                  source="panic_button")
    agent.publish(topics.alert(unit, topic_prefix), alert.to_json(), qos=1)  # as the unit agent does
    page.wait_for_url(f"**/darurat?alert={alert.id}", timeout=10000)
    page.wait_for_selector('[data-test="state-not-sent"]', state="visible", timeout=10000)
    assert page.is_hidden('[data-test="darurat-confirm"]')
    assert kiosk.kiosk.alerts.get(alert.id).alert.source == "panic_button"  # kept for delivery
    check_screen(page, artifacts, "darurat-tombol-panik")
    agent.publish(topics.alert_ack(unit, topic_prefix), AlertAck(alert.id, "Brigpol Dewi").to_json())
    page.wait_for_selector('[data-test="state-acked"]', state="visible", timeout=10000)
    # Beranda again: the replayed event does not bring the screen back
    page.click('[data-test="darurat-home"]')
    page.wait_for_url(kiosk.url + "/")
    page.wait_for_timeout(1500)
    assert page.url == kiosk.url + "/"


def test_a_typed_emergency_shows_the_true_state_first(serve_kiosk, broker, mqtt_client, topic_prefix,
                                                      new_page, artifacts) -> None:
    unit = "kiosk-escalate-1"
    kiosk = linked(serve_kiosk, broker, topic_prefix, unit, START_BRAIN=True)
    kiosk.kiosk.brain.wait(60)
    if kiosk.kiosk.brain.status != "ready":
        pytest.skip(f"the assistant brain is not available in this build: {kiosk.kiosk.brain.error}")
    officer = mqtt_client()
    officer.subscribe(topics.alert(unit, topic_prefix))
    question = "Tolong, ada kecelakaan di depan, orangnya berdarah!"
    page = new_page(800, 480)
    page.goto(kiosk.url + "/tanya")
    page.fill('[data-test="question"]', question)
    page.click('[data-test="ask"]')
    alert = Alert.from_json(officer.expect(5).payload)
    assert (alert.source, alert.text, alert.unit) == ("assistant", question, unit)
    page.wait_for_selector('[data-test="answer"] [data-test="state-not-sent"]', state="visible", timeout=10000)
    first = page.evaluate("document.getElementById('answer').firstElementChild.id")
    assert first == "alert-state"
    answer = page.text_content('[data-test="answer"]')
    assert "diberi tahu sekarang" not in answer  # never claimed while it is not sent
    assert "110" in answer and "119" in answer
    check_screen(page, artifacts, "tanya-darurat-belum-terkirim")
    assert_contrast(page, "tanya-darurat")
    # a next question while the emergency is not acknowledged: its state stays on top
    page.fill('[data-test="question"]', "biaya skck")
    page.click('[data-test="ask"]')
    wait_js(page, "document.getElementById('answer').getAttribute('aria-busy') === 'false' && "
                  "!document.getElementById('answer').textContent.includes('Sebentar')", 15000)
    assert page.evaluate("document.getElementById('answer').firstElementChild.id") == "alert-state"
    assert shown_state(page) == "not-sent"
    officer.publish(topics.alert_ack(unit, topic_prefix), AlertAck(alert.id, "Bripka Aziz").to_json())
    page.wait_for_selector('[data-test="answer"] [data-test="state-acked"]', state="visible", timeout=10000)
    assert shown_state(page) == "acked"
    check_screen(page, artifacts, "tanya-darurat-diterima")


@pytest.mark.parametrize("size,lang", [((1280, 720), "id"), ((800, 480), "en"), ((1280, 720), "en")],
                         ids=["1280x720-id", "800x480-en", "1280x720-en"])
def test_each_emergency_state_at_each_size_and_language(serve_kiosk, new_page, artifacts, size, lang) -> None:
    """The screen follows the alert box live (whatever path moved it), at every size, in English too."""
    kiosk = serve_kiosk(START_ALERTS=False)  # no delivery here: this test moves the states itself
    page = new_page(*size)
    page.goto(kiosk.url + (f"/bahasa/{lang}?next=/darurat" if lang != "id" else "/darurat"))
    page.click('[data-test="darurat-yes"]')
    page.wait_for_selector('[data-test="state-not-sent"]', state="visible", timeout=10000)
    [rec] = kiosk.kiosk.alerts.undelivered()
    call = "CALL 110 NOW" if lang == "en" else "TELEPON 110 SEKARANG"
    assert call in page.text_content('[data-test="state-not-sent"]')
    tag = f"{lang}-" if lang != "id" else ""
    for state, move in (("not-sent", None), ("sent", lambda: kiosk.kiosk.alerts.mark_hub(rec.id)),
                        ("acked", lambda: kiosk.kiosk.alerts.mark_acked(rec.id, "Bripka Aziz"))):
        if move:
            move()
            page.wait_for_selector(f'[data-test="state-{state}"]', state="visible", timeout=10000)
        assert shown_state(page) == state
        fits = page.evaluate("document.scrollingElement.scrollHeight <= innerHeight")
        assert fits, f"{state}: the Darurat screen scrolls at {size}"
        check_screen(page, artifacts, f"darurat-{tag}{state}")
        assert_contrast(page, f"darurat-{tag}{state}")
    assert "Bripka Aziz" in page.text_content('[data-test="acked-who"]')


def test_a_spoken_emergency_shows_the_alert_the_unit_raised(serve_kiosk, broker, mqtt_client, topic_prefix,
                                                            new_page, artifacts) -> None:
    from posko.messages import AssistantEvent

    unit = "kiosk-voice-1"
    kiosk = linked(serve_kiosk, broker, topic_prefix, unit)
    agent = mqtt_client()
    page = new_page(800, 480)
    page.goto(kiosk.url + "/tanya")
    deadline = time.monotonic() + 5
    while kiosk.kiosk.fanout.count() < 2:  # the page's and Tanya's own event streams
        assert time.monotonic() < deadline
        time.sleep(0.05)
    event_topic = topics.assistant_event(unit, topic_prefix)
    agent.publish(event_topic, AssistantEvent("listening", "btn-9", text="button").to_json(), qos=0)
    wait_js(page, "document.querySelector('[data-test=mic]').getAttribute('aria-pressed') === 'true'")
    reply = {"action": "escalate", "text": "Tetap di tempat yang aman sampai petugas datang.", "sources": []}
    agent.publish(event_topic, AssistantEvent("answer", "btn-9", reply=reply).to_json(), qos=0)
    # the unit's alert is not known yet: not sent, call 110
    page.wait_for_selector('[data-test="answer"] [data-test="state-not-sent"]', state="visible", timeout=10000)
    alert = Alert(id="5d1c7a8e-2f4b-4e0a-9c1d-7b6a5e4f3d21", unit=unit, posko="Posko Alun-alun",
                  source="assistant", text="tolong ada yang tenggelam")
    agent.publish(topics.alert(unit, topic_prefix), alert.to_json(), qos=1)  # as the unit agent does
    deadline = time.monotonic() + 10
    while kiosk.kiosk.alerts.get(alert.id) is None:
        assert time.monotonic() < deadline, "the kiosk did not keep the unit's alert"
        time.sleep(0.05)
    kiosk.kiosk.alerts.mark_hub(alert.id)  # stands for the hub's receipt (no hub in this test)
    page.wait_for_selector('[data-test="answer"] [data-test="state-sent"]', state="visible", timeout=10000)
    agent.publish(topics.alert_ack(unit, topic_prefix), AlertAck(alert.id, "Bripka Aziz").to_json())
    page.wait_for_selector('[data-test="answer"] [data-test="state-acked"]', state="visible", timeout=10000)
    assert page.url.endswith("/tanya")  # an assistant alert does not jump to Darurat
    check_screen(page, artifacts, "tanya-suara-darurat-diterima")


@pytest.mark.parametrize("size,lang", [((800, 480), "id"), ((800, 480), "en"), ((1280, 720), "id")],
                         ids=["800x480-id", "800x480-en", "1280x720-id"])
def test_darurat_is_one_tap_away_on_every_screen_and_cancel_goes_back(serve_kiosk, new_page, artifacts,
                                                                      size, lang) -> None:
    """Not only Beranda's tile: the top bar of Tanya, Lapor and Cek has Darurat, whose
    confirmation opens over the screen: Batal leaves the report being typed as it was and
    raises nothing; Ya raises the alert and Darurat shows its one true state."""
    kiosk = serve_kiosk(START_ALERTS=False)
    page = new_page(*size)
    page.goto(kiosk.url + (f"/bahasa/{lang}?next=/" if lang != "id" else "/"))
    assert page.locator('[data-test="topbar-darurat"]').count() == 0  # Beranda has its big tile
    tag = f"{lang}-" if lang != "id" else ""
    for path in ("/tanya", "/lapor", "/cek"):
        page.goto(kiosk.url + path)
        sos = page.locator('[data-test="topbar-darurat"]')
        assert sos.is_visible(), path
        assert sos.inner_text().strip() == ("Emergency" if lang == "en" else "Darurat")
        box = sos.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= size[0] and box["height"] >= 44, (path, box)
        # nothing else in the bar is pushed out of the screen or under it
        for other in page.locator(".topbar > *").all():
            b = other.bounding_box()
            assert b["x"] >= 0 and b["x"] + b["width"] <= size[0] + 0.5, (path, other.get_attribute("class"), b)
            if other.get_attribute("data-test") != "topbar-darurat":
                assert b["x"] + b["width"] <= box["x"] + 0.5 or b["x"] >= box["x"] + box["width"] - 0.5, (path, b, box)
        check_screen(page, artifacts, f"topbar-darurat-{tag}{path.strip('/')}")
        assert_contrast(page, f"topbar-darurat-{tag}{path.strip('/')}")
    page.goto(kiosk.url + "/lapor")
    page.click('[data-test="cat-kehilangan"]')
    page.fill('[data-test="description"]', "dompet hilang di pasar")
    page.click('[data-test="topbar-darurat"]')
    page.wait_for_selector('[data-test="sos-confirm"]', state="visible")
    check_screen(page, artifacts, f"topbar-darurat-{tag}confirm")
    assert_contrast(page, f"topbar-darurat-{tag}confirm")
    page.click('[data-test="sos-no"]')
    page.wait_for_selector('[data-test="sos-confirm"]', state="hidden")
    assert page.url.endswith("/lapor") and page.is_visible('[data-test="description"]')
    assert page.input_value('[data-test="description"]') == "dompet hilang di pasar"
    assert kiosk.kiosk.alerts.undelivered() == []  # Batal raised nothing
    # Ya: the alert is raised and Darurat follows it (here no path to the hub: not sent, call 110)
    page.click('[data-test="topbar-darurat"]')
    with page.expect_navigation():
        page.click('[data-test="sos-yes"]')
    page.wait_for_selector('[data-test="state-not-sent"]', state="visible", timeout=10000)
    [rec] = kiosk.kiosk.alerts.undelivered()
    assert rec.id in page.url and shown_state(page) == "not-sent"
