"""Alert floods: the pure policy, then 300 alerts in half a second over the real broker into
a running hub (collapsed, counted), bulk acknowledgement, and no ghost units."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid

import pytest
import requests

from hub.alert_flood import FloodPolicy, Recent, decide
from posko import topics
from posko.messages import Alert, AlertAck, Heartbeat
from tests.hub.support import Officer, wait_until

NOW = dt.datetime(2026, 12, 24, 20, 0, 0)
POLICY = FloodPolicy(rate_limit=3, window_s=60, collapse_s=600)


def _r(id_: str, ago_s: float, source: str = "panic_button", text: str = "", open_: bool = True,
       last_ago_s: float | None = None) -> Recent:
    at = NOW - dt.timedelta(seconds=ago_s)
    last = NOW - dt.timedelta(seconds=ago_s if last_ago_s is None else last_ago_s)
    return Recent(id=id_, source=source, text=text, received_at=at, last_at=last, open=open_)


def test_the_first_alert_of_a_unit_always_passes() -> None:
    assert decide(POLICY, [], "panic_button", "", NOW) is None
    # Even after a flood that officers have acknowledged: nothing open to merge into.
    acked = [_r(f"a{i}", i, text=f"t{i}", open_=False) for i in range(10)]
    assert decide(POLICY, acked, "assistant", "tolong", NOW) is None


def test_an_identical_repeat_joins_the_open_alert_while_it_keeps_coming() -> None:
    recent = [_r("first", 3000, last_ago_s=30)]  # raised 50 min ago, repeated 30 s ago
    assert decide(POLICY, recent, "panic_button", "", NOW) == "first"
    assert decide(POLICY, [_r("first", 3000, last_ago_s=700)], "panic_button", "", NOW) is None
    assert decide(POLICY, [_r("first", 10, open_=False)], "panic_button", "", NOW) is None  # acked
    spaced = [_r("q", 5, source="assistant", text="Tolong,  ada   KECELAKAAN")]
    assert decide(POLICY, spaced, "assistant", "tolong, ada kecelakaan", NOW) == "q"
    assert decide(POLICY, spaced, "assistant", "ada kebakaran", NOW) is None  # a different emergency


def test_past_the_rate_limit_new_alerts_are_counted_on_the_newest_open_one() -> None:
    recent = [_r("a", 30, text="satu"), _r("b", 20, text="dua"), _r("c", 10, text="tiga", open_=False)]
    assert decide(POLICY, recent, "assistant", "empat", NOW) == "b"
    older = [_r("a", 300, text="satu"), _r("b", 200, text="dua"), _r("c", 100, text="tiga")]
    assert decide(POLICY, older, "assistant", "empat", NOW) is None  # outside the window


def _rows(officer: Officer, unit_id: str) -> list[tuple[str, int]]:
    html = officer.get("/peringatan").text
    table = html[html.index('id="alert-log"'):]
    found = re.findall(r'<tr data-alert-id="([^"]+)" data-count="(\d+)">\s*<td>.*?</td>\s*<td>.*?</td>\s*'
                       r'<td>.*?<span class="mono muted">([^<]+)</span>', table, re.S)
    return [(aid, int(count)) for aid, count, unit in found if unit == unit_id]


def _ingest_listening(hub, officer: Officer, client, unit_id: str) -> None:
    """Wait until the hub's ingest hears this unit (a retained heartbeat reaches it however
    late it subscribes), so that what follows is not sent before anyone listens."""
    marker = f"ready-{uuid.uuid4().hex[:6]}"
    status = topics.unit_status(unit_id, hub.topic_root)
    client.publish(status, Heartbeat(unit=unit_id, state="online", version=marker, interval_s=30).to_json(),
                   qos=1, retain=True)
    wait_until(lambda: marker in officer.get("/armada/tabel").text, timeout=30, interval=0.3)
    client.publish(status, b"", qos=1, retain=True)


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_a_flood_of_300_alerts_in_half_a_second_becomes_a_few_counted_alerts(hub_server, mqtt_client) -> None:
    hub = hub_server
    officer = Officer(hub, *hub.add_user("operator"))
    unit_id, token = hub.add_unit()
    sender = mqtt_client()
    _ingest_listening(hub, officer, sender, unit_id)
    topic = topics.alert(unit_id, hub.topic_root)
    first = Alert(id=str(uuid.uuid4()), unit=unit_id, posko="Posko Banjir", source="panic_button")
    flood = [first] + [Alert(id=str(uuid.uuid4()), unit=unit_id, posko="Posko Banjir", source="panic_button")
                       for _ in range(199)]
    flood += [Alert(id=str(uuid.uuid4()), unit=unit_id, posko="Posko Banjir", source="assistant",
                    text=f"tolong nomor {i}") for i in range(100)]
    started = time.monotonic()
    infos = [sender.client.publish(topic, a.to_json(), qos=1) for a in flood]
    for info in infos:
        info.wait_for_publish(5)
    assert time.monotonic() - started < 2.0  # a flood, not a trickle
    sender.publish(topic, flood[5].to_json(), qos=1)  # a redelivered one is not counted again

    rows = wait_until(lambda: (r := _rows(officer, unit_id)) and sum(c for _, c in r) >= 300 and r,
                      timeout=60, interval=0.5)
    time.sleep(1.0)
    rows = _rows(officer, unit_id)
    assert sum(count for _, count in rows) == 300
    assert len(rows) == 5  # [hub] alert_rate_limit: the first, then four distinct ones, then counts
    assert first.id in [aid for aid, _ in rows]  # the first always passes
    assert dict(rows)[first.id] >= 200  # the stuck panic button is one alert with its count
    # The HTTP path (the kiosk's alert box) finds a collapsed alert under its own id.
    again = requests.post(f"{hub.base}/api/v1/alerts", data=flood[7].to_json(), timeout=10,
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert again.status_code == 200 and again.json()["id"] == flood[7].id and again.json()["first"] is False
    assert sum(count for _, count in _rows(officer, unit_id)) == 300  # not counted twice
    banner = officer.get("/laporan").text
    assert banner.count('class="alert-card"') >= 1
    assert sum(banner.count(f'data-alert-id="{aid}"') for aid, _ in rows) == 5

    # Bulk acknowledgement: every open alert at once, each ack published to the unit.
    listener = mqtt_client()
    listener.subscribe(topics.alert_ack(unit_id, hub.topic_root))
    nothing = officer.post("/peringatan/terima", {}, page="/peringatan",
                           headers={"Accept": "application/json"})
    assert nothing.status_code == 400 and nothing.json()["field"] == "id"
    done = officer.post("/peringatan/terima", {"semua": "1", "unit": unit_id}, page="/peringatan",
                        headers={"Accept": "application/json"})
    assert done.status_code == 200 and sorted(done.json()["acknowledged"]) == sorted(a for a, _ in rows)
    # One ack for every alert the unit raised, the collapsed ones included (a kiosk waits
    # for the ack of the id it raised).
    acked = {AlertAck.from_json(listener.expect(10).payload).alert_id for _ in range(300)}
    assert acked == {a.id for a in flood}
    answer = requests.post(f"{hub.base}/api/v1/alerts", data=flood[7].to_json(), timeout=10,
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert answer.json()["acked_by"].startswith("Bripka operator-")
    page = officer.get("/laporan").text
    assert not any(f'data-alert-id="{aid}"' in page for aid, _ in rows)  # banners gone

    # After the acknowledgement the unit's next alert is new again (the limit never hides it).
    fresh = Alert(id=str(uuid.uuid4()), unit=unit_id, posko="Posko Banjir", source="panic_button")
    sender.publish(topic, fresh.to_json(), qos=1)
    wait_until(lambda: fresh.id in dict(_rows(officer, unit_id)), timeout=15)


@pytest.mark.broker
@pytest.mark.timeout(90)
def test_ticked_alerts_are_acknowledged_in_bulk_from_the_page(hub_server, mqtt_client) -> None:
    hub = hub_server
    officer = Officer(hub, *hub.add_user("operator"))
    units = [hub.add_unit()[0] for _ in range(3)]
    sender = mqtt_client()
    _ingest_listening(hub, officer, sender, units[0])
    alerts = [Alert(id=str(uuid.uuid4()), unit=u, posko=f"Posko {u}", source="kiosk_darurat") for u in units]
    for a in alerts:
        sender.publish(topics.alert(a.unit, hub.topic_root), a.to_json(), qos=1)
    wait_until(lambda: all(_rows(officer, u) for u in units), timeout=15)
    page = officer.get("/peringatan").text
    assert 'action="/peringatan/terima"' in page and f'name="id" value="{alerts[0].id}"' in page
    response = officer.post("/peringatan/terima", {"id": [alerts[0].id, alerts[1].id]}, page="/peringatan")
    assert response.status_code == 200 and "2 peringatan diterima." in response.text  # after the redirect
    page = officer.get("/peringatan").text
    assert f'name="id" value="{alerts[0].id}"' not in page and f'name="id" value="{alerts[2].id}"' in page


@pytest.mark.broker
@pytest.mark.timeout(60)
def test_status_from_an_unknown_unit_id_makes_no_ghost_unit(hub_server, mqtt_client) -> None:
    hub = hub_server
    officer = Officer(hub, *hub.add_user("operator"))
    known, _token = hub.add_unit()
    client = mqtt_client()
    ghost = f"ghost-{uuid.uuid4().hex[:6]}"
    # Retained, so the ingest hears them however late it subscribed.
    client.publish(topics.unit_status(ghost, hub.topic_root),
                   Heartbeat(unit=ghost, state="online", interval_s=30).to_json(), qos=1, retain=True)
    client.publish(topics.unit_status(known, hub.topic_root), b"{not json", qos=1)
    client.publish(topics.unit_status(known, hub.topic_root),
                   Heartbeat(unit=known, state="online", version="9.9-known", interval_s=30).to_json(),
                   qos=1, retain=True)
    wait_until(lambda: f'data-unit="{known}"' in (h := officer.get("/armada/tabel").text)
               and "9.9-known" in h)  # the ingest has read past the ghost's message
    time.sleep(0.5)
    assert f'data-unit="{ghost}"' not in officer.get("/armada/tabel").text
    with hub.db() as db:
        from hub.models import Unit

        assert db.get(Unit, ghost) is None
    for unit in (ghost, known):
        client.publish(topics.unit_status(unit, hub.topic_root), b"", qos=1, retain=True)
