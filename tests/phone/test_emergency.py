"""The phone's emergency button in Chromium, against the real hub (`posko hub serve` with its
ingest), the real arbiter and Mosquitto's WebSocket listener.

Pressing DARURAT and confirming takes the group's floor with emergency priority and raises
an alert on `alert/{member}` with the phone's location (Playwright's geolocation); the hub's
dashboard shows it first with the member's name and group, and the offline map shows where.
Without the location permission the alert goes without one and both screens say so. The
phone says "terkirim" only once the hub's receipt came, and keeps (and resends) the alert
while it cannot reach the broker.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from gateway.messages import FloorState
from tests.hub.support import HubProcess
from tests.phone.conftest import GROUP, open_phone, wait_online, wait_until
from tests.support.mqtt import Client, Gate

MEMBER = "hp-budi"
WHERE = {"latitude": -8.71770, "longitude": 115.16860, "accuracy": 12}


def _config(ws_broker, root, *, port: int | None = None) -> dict:
    return {"unit": MEMBER, "name": "Budi", "password": "", "groups": [GROUP, "ojol-legian"],
            "broker": f"ws://127.0.0.1:{port or ws_broker.websockets_port}", "root": root}


def _add_member(hub) -> None:
    import datetime as dt

    from hub.models import utcnow
    from hub.phone import PhoneMember
    from hub.talkgroups import TalkGroup

    with hub.db() as db:
        db.add_all([TalkGroup(id=GROUP, name="Ojol Kuta"), TalkGroup(id="ojol-legian", name="Ojol Legian"),
                    PhoneMember(id=MEMBER, name="Budi ojol", groups=f"{GROUP},ojol-legian",
                                expires_at=utcnow() + dt.timedelta(days=30), enrolled_at=utcnow(),
                                password_line=f"{MEMBER}:$7$x")])
        db.commit()


def _dashboard(browser, hub):
    user = hub.add_user("operator")
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(hub.base + "/")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-live='connected']", timeout=10000)
    return page, user


def _press_sos(page) -> None:
    page.click("#sos")
    page.wait_for_selector("#sos-confirm:not([hidden])")
    page.click("#sos-yes")


def _states(watch: Client) -> list[FloorState]:
    out = []
    while not watch.messages.empty():
        msg = watch.messages.get_nowait()
        if msg.topic.endswith("/floor/state"):
            out.append(FloorState.from_json(msg.payload))
    return out


def test_emergency_with_location_reaches_the_dashboard_and_the_map(
        browser, hub, ws_broker, root, arbiter, artifacts) -> None:
    _add_member(hub)
    dash, _user = _dashboard(browser, hub)
    watch = Client(ws_broker.port)
    assert watch.wait_connected()
    watch.subscribe(f"{root}/tg/ojol-legian/floor/state")
    page = open_phone(browser, hub, _config(ws_broker, root))
    page.context.grant_permissions(["geolocation", "microphone"], origin=hub.base)
    page.context.set_geolocation(WHERE)
    wait_online(page)
    page.select_option("#group", "ojol-legian")
    page.screenshot(path=str(artifacts / "phone-sos-idle.png"))
    page.click("#sos")
    page.wait_for_selector("#sos-confirm:not([hidden])")
    page.screenshot(path=str(artifacts / "phone-sos-confirm.png"))
    page.click("#sos-yes")

    # The floor of the selected group, with emergency priority, held hands-free.
    page.wait_for_selector("#ptt[data-state='emergency']", timeout=8000)
    assert wait_until(lambda: any(s.holder == MEMBER and s.priority == "emergency" for s in _states(watch)), 5)
    # The hub's receipt: "terkirim", and the location went with it.
    page.wait_for_selector("#sos-status[data-state='received']", timeout=10000)
    assert "Terkirim ke pusat komando" in page.text_content("#sos-text")
    assert "Lokasi ponsel disertakan (±12 m)" in page.text_content("#sos-where")
    page.screenshot(path=str(artifacts / "phone-sos-received.png"))

    card = dash.locator(".alert-card[data-source='phone_emergency']")
    card.wait_for(timeout=10000)
    text = card.text_content()
    assert "Budi ojol" in text and MEMBER in text and "Tombol darurat ponsel" in text, text
    assert card.locator(".alert-group").text_content() == "ojol-legian"
    assert "-8.71770, 115.16860 (±12 m" in card.locator(".alert-location").text_content()
    # First: the emergency is the top card of the band above every page.
    assert dash.locator("#alerts .alert-card").first.get_attribute("data-source") == "phone_emergency"
    dash.screenshot(path=str(artifacts / "hub-phone-emergency.png"))

    # A reload renders the same card from the database.
    dash.reload()
    card = dash.locator(".alert-card[data-source='phone_emergency']")
    assert "-8.71770, 115.16860" in card.locator(".alert-location").text_content()
    card.locator("a.alert-map").click()
    dash.wait_for_selector("#map[data-ready='1']", timeout=10000)
    assert dash.get_attribute("#map", "data-alerts") == "1"
    label = dash.locator(".leaflet-tooltip.alert-label")
    assert "DARURAT Budi ojol · ojol-legian" in label.text_content()
    centre = dash.evaluate("(() => { const b = document.querySelector('#map').getBoundingClientRect();"
                           " const d = document.querySelector('path.alert-dot').getBoundingClientRect();"
                           " return [d.x + d.width / 2 - b.x - b.width / 2, d.y + d.height / 2 - b.y - b.height / 2]; })()")
    assert abs(centre[0]) < 3 and abs(centre[1]) < 3, f"the map is not centred on the alert: {centre}"
    dash.screenshot(path=str(artifacts / "hub-phone-emergency-map.png"))

    # Not "diterima petugas" until an officer takes it; then the phone says who.
    assert page.get_attribute("#sos-status", "data-state") == "received"
    dash.go_back()
    dash.locator(".alert-card[data-source='phone_emergency'] button.ack").click()
    page.wait_for_selector("#sos-status[data-state='taken']", timeout=10000)
    assert "Diterima petugas" in page.text_content("#sos-text")
    # The emergency call ends with a tap.
    page.click("#ptt")
    page.wait_for_selector("#ptt[data-state='idle']", timeout=5000)
    assert not page.errors, page.errors
    assert not dash.errors, dash.errors
    watch.close()


def test_without_permission_the_alert_goes_without_a_location(browser, hub, ws_broker, root, arbiter,
                                                              artifacts) -> None:
    _add_member(hub)
    dash, _user = _dashboard(browser, hub)
    page = open_phone(browser, hub, _config(ws_broker, root))  # geolocation not granted
    wait_online(page)
    _press_sos(page)
    page.wait_for_selector("#sos-status[data-state='received']", timeout=15000)
    assert "Tanpa lokasi" in page.text_content("#sos-where"), page.text_content("#sos-where")
    page.screenshot(path=str(artifacts / "phone-sos-no-location.png"))
    message = page.evaluate("window.poskoAlerts.latest().message")
    assert "location" not in message and message["no_location"] in ("denied", "timeout", "unavailable"), message
    card = dash.locator(".alert-card[data-source='phone_emergency']")
    card.wait_for(timeout=10000)
    assert card.locator(".alert-location").text_content().startswith("Tanpa lokasi")
    assert card.locator(".alert-location").get_attribute("data-located") == "0"
    assert card.locator("a.alert-map").count() == 0
    assert not page.errors, page.errors


def test_terkirim_only_after_the_hubs_receipt(browser, hub, ws_broker, root) -> None:
    """The phone on a topic root no hub listens to: its alert reaches the broker, retried
    with the same id, and it still says "sending" until a receipt comes."""
    alone = f"test/{uuid.uuid4().hex[:8]}/posko/v1"
    watch = Client(ws_broker.port)
    assert watch.wait_connected()
    watch.subscribe(f"{alone}/alert/#")
    page = open_phone(browser, hub, _config(ws_broker, alone))
    wait_online(page)
    _press_sos(page)
    page.wait_for_selector("#sos-status[data-state='sending']", timeout=10000)
    assert "telepon 110" in page.text_content("#sos-text").lower()
    assert wait_until(lambda: watch.messages.qsize() >= 2, 12), "the alert was not sent again"
    sent = [json.loads(watch.messages.get_nowait().payload) for _ in range(watch.messages.qsize())]
    assert {m["id"] for m in sent} == {sent[0]["id"]} and sent[0]["source"] == "phone_emergency"
    assert page.get_attribute("#sos-status", "data-state") == "sending"
    watch.publish(f"{alone}/alert/{MEMBER}/ack",
                  json.dumps({"alert_id": "someone-else", "officer": "", "time": time.time(), "stage": "received"}))
    time.sleep(0.5)
    assert page.get_attribute("#sos-status", "data-state") == "sending"
    watch.publish(f"{alone}/alert/{MEMBER}/ack",
                  json.dumps({"alert_id": sent[0]["id"], "officer": "", "time": time.time(), "stage": "received"}))
    page.wait_for_selector("#sos-status[data-state='received']", timeout=5000)
    tries = page.evaluate("window.poskoAlerts.latest().tries")
    time.sleep(4)
    assert page.evaluate("window.poskoAlerts.latest().tries") == tries, "resent after the receipt"
    watch.close()


@pytest.fixture
def proxy(ws_broker) -> Iterator[Gate]:
    """The broker's WebSocket port behind a gate that starts shut: unreachable until open()."""
    gate = Gate(ws_broker.websockets_port)
    gate.shut()
    try:
        yield gate
    finally:
        gate.shut()


@pytest.fixture
def late_hub(ws_broker, root, tmp_path, proxy) -> Iterator[HubProcess]:
    """The hub whose phone app reaches the broker only through the proxy (its page's
    Content-Security-Policy names that origin)."""
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "hub",
                     mqtt_port=ws_broker.port, topic_root=root,
                     extra_env={"POSKO_PTT_PHONE_BROKER_URL": f"ws://{{host}}:{proxy.port}"}).start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.mark.timeout(90)
def test_offline_the_alert_waits_and_goes_when_connected(browser, late_hub, ws_broker, root, arbiter,
                                                         proxy, artifacts) -> None:
    hub = late_hub
    _add_member(hub)
    page = open_phone(browser, hub, _config(ws_broker, root, port=proxy.port))
    page.context.grant_permissions(["geolocation", "microphone"], origin=hub.base)
    page.context.set_geolocation(WHERE)
    page.wait_for_selector("#radio:not([hidden])")
    _press_sos(page)
    page.wait_for_selector("#sos-status[data-state='queued']", timeout=10000)
    assert "Tidak tersambung" in page.text_content("#sos-text")
    assert "Telepon 110" in page.text_content("#sos-status")
    page.screenshot(path=str(artifacts / "phone-sos-offline.png"))
    # Kept in the phone: a reload does not lose it.
    page.reload()
    page.wait_for_selector("#sos-status[data-state='queued']", timeout=10000)
    proxy.open()
    page.wait_for_selector("#sos-status[data-state='received']", timeout=20000)
    from hub.models import Alert

    with hub.db() as db:
        rows = db.query(Alert).filter(Alert.unit_id == MEMBER).all()
        assert len(rows) == 1 and rows[0].lat == pytest.approx(-8.7177) and rows[0].talk_group == GROUP
    # Chromium logs each refused connection while the broker was out of reach; nothing else.
    errors = [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e]
    assert not errors, errors


def _emergency_js_page(browser):
    """A blank page with hub/static/phone/emergency.js loaded: its parts as numbers."""
    from pathlib import Path

    page = browser.new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(path=str(Path(__file__).parents[2] / "hub/static/phone/emergency.js"))
    return page


def test_alert_queue_backs_off_and_matches_acks(browser) -> None:
    """The phone's alert queue as numbers: resent after 3, 6, 12 … 30 s without a receipt,
    everything due at once when the link comes back, acks matched by id."""
    page = _emergency_js_page(browser)
    got = page.evaluate("""() => {
      let saved = null;
      const q = new PoskoEmergency.AlertQueue({get: () => saved, set: (v) => { saved = v; }});
      const a = q.add({id: "a1"});
      const out = {gaps: []};
      let t = 0;
      for (let i = 0; i < 7; i++) {
        const due = q.due(t, false);
        if (due.length !== 1) return {error: "not due at " + t};
        q.sent(a, t);
        out.gaps.push(a.nextAt - t);
        if (q.due(a.nextAt - 1, false).length) return {error: "due early"};
        out.online = q.due(t + 1, true).length;  // the link came back: at once
        t = a.nextAt;
      }
      out.other = q.ack({alert_id: "zz", stage: "received"}, t);
      q.ack({alert_id: "a1", stage: "received", officer: ""}, t);
      out.afterReceipt = [a.state, q.due(t + 1e6, true).length];
      q.ack({alert_id: "a1", officer: "Bripka A"}, t + 5);
      out.taken = [a.state, a.officer, a.takenAt];
      out.kept = new PoskoEmergency.AlertQueue({get: () => saved, set: () => {}}).latest().state;
      return out;
    }""")
    assert got.get("gaps") == [3000, 6000, 12000, 24000, 30000, 30000, 30000], got
    assert got["online"] == 1 and got["other"] is None
    assert got["afterReceipt"] == ["received", 0]
    assert got["taken"][:2] == ["taken", "Bripka A"] and got["kept"] == "taken"
    page.close()


def test_tracker_sends_a_moved_phone_at_most_every_10_s(browser) -> None:
    """The phone's throttle as numbers: a fix goes when it is 25 m or more from the position
    the hub has and 10 s have passed since the last one sent; the newest such fix wins."""
    page = _emergency_js_page(browser)
    got = page.evaluate("""() => {
      const E = PoskoEmergency;
      const at = (dLatM) => ({lat: -8.7177 + dLatM / 111195, lon: 115.1686, accuracy_m: 10, time: 0});
      const t = new E.Tracker(at(0), 0);
      const out = {};
      t.offer(at(10)); out.near = t.due(20000);                  // 10 m: nothing to send
      t.offer(at(30)); out.early = t.due(9999);                  // far enough, but too soon
      out.due = t.due(10000) && Math.round(E.distanceM(at(0), t.due(10000)));
      t.offer(at(80)); const f = t.due(10000); t.sent(f, 10000);   // the newest fix wins
      out.sent = Math.round(E.distanceM(at(0), f));
      t.offer(at(110)); out.after = [t.due(19999), Boolean(t.due(20000))];
      t.offer(at(95)); out.back = t.due(30000);                  // back within 25 m of the last sent
      const none = new E.Tracker(null, 0); none.offer(at(0)); out.first = Boolean(none.due(10000));
      return out;
    }""")
    assert got == {"near": None, "early": None, "due": 30, "sent": 80, "after": [None, True],
                   "back": None, "first": True}, got
    page.close()


def _track(hub, alert_id: str) -> list[tuple[float, float]]:
    from sqlalchemy import select

    from hub.models import AlertTrackPoint

    with hub.db() as db:
        return [(p.lat, p.lon) for p in db.scalars(select(AlertTrackPoint).where(
            AlertTrackPoint.alert_id == alert_id).order_by(AlertTrackPoint.fix_at))]


def test_the_phone_keeps_sending_where_it_goes_until_an_officer_takes_the_emergency(
        browser, hub, ws_broker, root, arbiter, artifacts) -> None:
    """End to end: the phone moves (Playwright's geolocation), the dashboard's card shows the
    newest position live and after a reload, the map the trail; after the officer's
    acknowledgement the phone stops and the hub takes no more points."""
    from posko.messages import AlertLocation, Location

    _add_member(hub)
    dash, _user = _dashboard(browser, hub)
    page = open_phone(browser, hub, _config(ws_broker, root))
    page.context.grant_permissions(["geolocation", "microphone"], origin=hub.base)
    page.context.set_geolocation(WHERE)
    wait_online(page)
    _press_sos(page)
    page.wait_for_selector("#sos-status[data-state='received']", timeout=10000)
    alert_id = page.evaluate("window.poskoAlerts.latest().message.id")
    assert page.evaluate("window.poskoTrack.item") == alert_id
    card = dash.locator(f".alert-card[data-alert-id='{alert_id}']")
    card.wait_for(timeout=10000)
    where = card.locator(".alert-location")
    assert "-8.71770, 115.16860" in where.text_content()

    # 10 m: the phone sends nothing. 200 m north: the card moves, live.
    page.context.set_geolocation({**WHERE, "latitude": -8.71761})
    time.sleep(1.0)
    page.context.set_geolocation({**WHERE, "latitude": -8.71590, "accuracy": 8})
    assert wait_until(lambda: "-8.71590" in where.text_content(), 20), where.text_content()
    moved_at = time.monotonic()
    assert "(±8 m" in where.text_content()
    assert wait_until(lambda: "Lokasi terkini dikirim" in page.text_content("#sos-where"), 5)
    # Another 200 m at once: it goes no sooner than 10 s after the last one.
    page.context.set_geolocation({**WHERE, "latitude": -8.71410, "longitude": 115.16960, "accuracy": 8})
    assert wait_until(lambda: "-8.71410" in where.text_content(), 25), where.text_content()
    gap = time.monotonic() - moved_at
    assert gap >= 9.0, f"the second position came {gap:.1f} s after the first"
    assert _track(hub, alert_id) == [(-8.7177, 115.1686), (-8.7159, 115.1686), (-8.7141, 115.1696)]
    dash.screenshot(path=str(artifacts / "hub-phone-emergency-moved.png"))

    # A reload shows the newest position from the database; the map the trail to it.
    dash.reload()
    card = dash.locator(f".alert-card[data-alert-id='{alert_id}']")
    assert "-8.71410, 115.16960" in card.locator(".alert-location").text_content()
    card.locator("a.alert-map").click()
    dash.wait_for_selector("#map[data-ready='1']", timeout=10000)
    assert dash.locator("path.alert-trail").count() == 1
    assert dash.locator("path.alert-trail-point").count() == 2  # the two earlier positions
    # The whole trail is in view, the newest position on top of it.
    outside = dash.evaluate("(() => { const b = document.querySelector('#map').getBoundingClientRect();"
                            " return [...document.querySelectorAll('path.alert-dot, path.alert-trail-point')]"
                            ".map((p) => p.getBoundingClientRect()).filter((r) => r.left < b.left || r.right > b.right"
                            " || r.top < b.top || r.bottom > b.bottom).length; })()")
    assert outside == 0, f"{outside} of the trail's points are outside the map"
    data = dash.evaluate("fetch('/peta/data.json', {credentials: 'same-origin'}).then((r) => r.json())")
    assert data["alerts"][0]["track"] == [[-8.7177, 115.1686], [-8.7159, 115.1686], [-8.7141, 115.1696]]
    dash.screenshot(path=str(artifacts / "hub-phone-emergency-trail.png"))

    # The officer takes it: the phone stops watching, and the hub would take no more anyway.
    dash.go_back()
    dash.locator(f".alert-card[data-alert-id='{alert_id}'] button.ack").click()
    page.wait_for_selector("#sos-status[data-state='taken']", timeout=10000)
    assert page.evaluate("window.poskoTrack.item") is None
    watch = Client(ws_broker.port)
    assert watch.wait_connected()
    later = Location(lat=-8.7100, lon=115.1700, accuracy_m=5, time=time.time() + 60)
    for target, alert in ((MEMBER, alert_id), (MEMBER, "tidak-ada"), ("hp-sari", alert_id)):
        watch.publish(f"{root}/alert/{target}/location",
                      AlertLocation(alert_id=alert, unit=target, location=later).to_json())
    time.sleep(1.5)
    assert len(_track(hub, alert_id)) == 3, "a point was stored for a closed, unknown or other member's alert"
    watch.close()
    assert not page.errors, page.errors


def _cancelled_at(hub, alert_id: str):
    from hub.models import Alert

    with hub.db() as db:
        return db.get(Alert, alert_id).cancelled_at


def test_the_member_calls_the_emergency_off_and_the_dashboard_stops_ringing(
        browser, hub, ws_broker, root, arbiter, artifacts) -> None:
    """An emergency pressed by mistake: once the hub has it the phone offers "Batalkan
    darurat" (two taps), stops sending its position, and says the call-off arrived only on
    the hub's receipt. The dashboard's card says who called it off and when and stops ringing,
    but stays until an officer takes it (a call-off may be made under duress). Another
    member's or an unknown call-off changes nothing."""
    from posko.messages import AlertCancel

    _add_member(hub)
    dash, _user = _dashboard(browser, hub)
    page = open_phone(browser, hub, _config(ws_broker, root))
    page.context.grant_permissions(["geolocation", "microphone"], origin=hub.base)
    page.context.set_geolocation(WHERE)
    wait_online(page)
    assert page.locator("#sos-off").is_hidden()
    _press_sos(page)
    page.wait_for_selector("#sos-status[data-state='received']", timeout=10000)
    alert_id = page.evaluate("window.poskoAlerts.latest().message.id")
    card = dash.locator(f".alert-card[data-alert-id='{alert_id}']")
    card.wait_for(timeout=10000)
    assert dash.evaluate("document.body.dataset.alarm") == "on"

    # Forged or stray call-offs: another member's topic, an unknown id. Nothing changes.
    watch = Client(ws_broker.port)
    assert watch.wait_connected()
    watch.publish(f"{root}/alert/hp-sari/cancel", AlertCancel(alert_id=alert_id, unit="hp-sari").to_json())
    watch.publish(f"{root}/alert/{MEMBER}/cancel", AlertCancel(alert_id="tidak-ada", unit=MEMBER).to_json())
    time.sleep(1.5)
    assert _cancelled_at(hub, alert_id) is None
    assert dash.evaluate("document.body.dataset.alarm") == "on" and card.get_attribute("data-cancelled") is None

    # One tap only arms the button; it disarms by itself.
    off = page.locator("#sos-off")
    off.click()
    assert off.text_content() == "Ketuk lagi untuk membatalkan"
    assert page.evaluate("window.poskoAlerts.latest().cancel") is None
    assert wait_until(lambda: off.text_content() == "Batalkan darurat", 7)
    off.click()
    off.click()
    page.wait_for_selector("#sos-status[data-state='cancelled']", timeout=10000)
    assert "Pembatalan diterima pusat komando" in page.text_content("#sos-text")
    assert off.is_hidden()
    assert page.evaluate("window.poskoTrack.item") is None, "still watching the position"
    assert _cancelled_at(hub, alert_id) is not None

    # The dashboard: marked, silent, still there; after a reload too.
    assert wait_until(lambda: card.get_attribute("data-cancelled") == "1", 10)
    assert "Dibatalkan pengirim pukul" in card.text_content()
    assert dash.evaluate("document.body.dataset.alarm") == "off"
    dash.screenshot(path=str(artifacts / "hub-phone-emergency-called-off.png"))
    dash.reload()
    card = dash.locator(f".alert-card[data-alert-id='{alert_id}']")
    assert card.get_attribute("data-cancelled") == "1"
    assert dash.evaluate("document.body.dataset.alarm") == "off"
    page.screenshot(path=str(artifacts / "phone-emergency-called-off.png"))

    # A position after the call-off is not stored; the officer still takes it.
    from posko.messages import AlertLocation, Location

    watch.publish(f"{root}/alert/{MEMBER}/location", AlertLocation(
        alert_id=alert_id, unit=MEMBER, location=Location(lat=-8.70, lon=115.17, accuracy_m=5,
                                                          time=time.time() + 60)).to_json())
    time.sleep(1.0)
    assert _track(hub, alert_id) == []
    card.locator("button.ack").click()
    page.wait_for_selector("#sos-status[data-state='cancelled']", timeout=5000)
    assert wait_until(lambda: dash.locator(f".alert-card[data-alert-id='{alert_id}']").count() == 0, 10)
    dash.goto(hub.base + "/peringatan")
    assert "Dibatalkan pengirim" in dash.locator(f"tr[data-alert-id='{alert_id}']").text_content()
    watch.close()
    assert not page.errors and not dash.errors, (page.errors, dash.errors)


def test_alert_queue_calls_off_only_what_the_hub_has(browser) -> None:
    """The call-off as numbers: refused before the hub's receipt, resent with the alert's
    backoff until its own receipt, which does not change the alert's stage."""
    page = _emergency_js_page(browser)
    got = page.evaluate("""() => {
      let saved = null;
      const q = new PoskoEmergency.AlertQueue({get: () => saved, set: (v) => { saved = v; }});
      const a = q.add({id: "a1"});
      const out = {early: q.cancel(a, 0), gaps: []};
      q.ack({alert_id: "a1", stage: "received", officer: ""}, 10);
      out.first = q.cancel(a, 20);
      out.twice = q.cancel(a, 21);
      let t = 20;
      for (let i = 0; i < 4; i++) {
        if (q.cancelsDue(t, false).length !== 1) return {error: "not due at " + t};
        q.cancelSent(a, t);
        out.gaps.push(a.cancelNextAt - t);
        t = a.cancelNextAt;
      }
      out.expired = q.cancelsDue(20 + PoskoEmergency.TRACK_MAX_MS, true).length;
      q.ack({alert_id: "a1", stage: "cancelled", officer: ""}, t);
      out.after = [a.state, a.cancel, a.cancelledAt === t, q.cancelsDue(t + 1e6, true).length];
      q.ack({alert_id: "a1", officer: "Bripka A"}, t + 5);
      out.taken = [a.state, a.cancel];
      out.kept = new PoskoEmergency.AlertQueue({get: () => saved, set: () => {}}).latest().cancel;
      return out;
    }""")
    assert got.get("early") is False, got
    assert got["first"] is True and got["twice"] is False
    assert got["gaps"] == [3000, 6000, 12000, 24000] and got["expired"] == 0
    assert got["after"] == ["received", "done", True, 0]
    assert got["taken"] == ["taken", "done"] and got["kept"] == "done"
    page.close()
