"""Heartbeats and alerts over the session's real Mosquitto, into a running hub."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from posko import topics
from posko.messages import Alert, AlertAck, Heartbeat
from tests.hub.support import Officer, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


def _row(officer: Officer, unit_id: str) -> str | None:
    html = officer.get("/armada/tabel").text
    marker = f'data-unit="{unit_id}"'
    if marker not in html:
        return None
    return html[html.index(marker):].split("</tr>")[0]


def test_heartbeats_online_offline_by_will_and_by_silence(hub_server, mqtt_client):
    hub = hub_server
    officer = Officer(hub, *hub.add_user("operator"))
    unit_id, _token = hub.add_unit()
    client = mqtt_client()
    beat = Heartbeat(unit=unit_id, state="online", version="0.1.0-test", disk_free_mb=5120,
                     outbox_pending=37, outbox_oldest_s=600, interval_s=1.0)
    client.publish(topics.unit_status(unit_id, hub.topic_root), beat.to_json(), qos=1, retain=True)
    row = wait_until(lambda: (r := _row(officer, unit_id)) and 'data-online="1"' in r and r)
    assert "0.1.0-test" in row and ">37 <" in row and "5120 MB" in row

    # last-will style payload: offline at once
    client.publish(topics.unit_status(unit_id, hub.topic_root), Heartbeat.offline(unit_id), qos=1)
    wait_until(lambda: 'data-online="0"' in (_row(officer, unit_id) or ""))

    # back online, then silent: offline after 3 intervals with no message at all
    client.publish(topics.unit_status(unit_id, hub.topic_root), beat.to_json(), qos=1)
    wait_until(lambda: 'data-online="1"' in (_row(officer, unit_id) or ""))
    wait_until(lambda: 'data-online="0"' in (_row(officer, unit_id) or ""), timeout=15, interval=0.5)
    client.publish(topics.unit_status(unit_id, hub.topic_root), b"", qos=1, retain=True)  # clear retained


def test_alert_listed_then_acknowledged_with_ack_on_mqtt(hub_server, mqtt_client):
    hub = hub_server
    officer = Officer(hub, *hub.add_user("operator"))
    unit_id, _token = hub.add_unit()
    listener = mqtt_client()
    listener.subscribe(topics.alert_ack(unit_id, hub.topic_root))
    alert = Alert(id=str(uuid.uuid4()), unit=unit_id, posko="Posko Alun-alun", source="assistant",
                  text="Tolong, ada kecelakaan di depan, orangnya berdarah!", time=time.time())
    sender = mqtt_client()
    sender.publish(topics.alert(unit_id, hub.topic_root), alert.to_json(), qos=1)
    sender.publish(topics.alert(unit_id, hub.topic_root), alert.to_json(), qos=1)  # a QoS-1 repeat
    # the banner and the log row, once each (never twice for the repeated message)
    marker = f'data-alert-id="{alert.id}"'
    page = wait_until(lambda: (h := officer.get("/peringatan").text).count(marker) >= 2 and h)
    assert page.count(marker) == 2
    assert "orangnya berdarah" in page

    ack = officer.post(f"/peringatan/{alert.id}/terima", headers={"Accept": "application/json"})
    assert ack.status_code == 200 and ack.json()["first"] is True
    message = listener.expect(timeout=10)
    received = AlertAck.from_json(message.payload)
    assert received.alert_id == alert.id and received.officer.startswith("Bripka operator-")
    assert message.qos == 1
    assert abs(received.time - time.time()) < 30
    again = officer.post(f"/peringatan/{alert.id}/terima", headers={"Accept": "application/json"})
    assert again.json()["first"] is False
    assert f'data-alert-id="{alert.id}"' not in officer.get("/laporan").text  # banner gone
    assert requests.post(f"{hub.base}/peringatan/{alert.id}/terima", timeout=10,
                         allow_redirects=False).status_code in (302, 400)  # no session: refused


def test_live_stream_carries_reports_and_alerts(hub_server, mqtt_client):
    hub = hub_server
    officer = Officer(hub, *hub.add_user("operator"))
    unit_id, token = hub.add_unit()
    from tests.hub.support import report_body

    events: list[tuple[str, dict]] = []
    with officer.http.get(f"{hub.base}/live/stream", stream=True, timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        body = report_body(description="<b>tebal</b>")
        requests.post(f"{hub.base}/api/v1/reports", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {token}"})
        kind = None
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind:
                events.append((kind, json.loads(line[6:])))
                if kind == "report" and events[-1][1]["id"] == body["id"]:
                    break
    report = [data for kind, data in events if kind == "report" and data["id"] == body["id"]][0]
    assert report["description"] == "<b>tebal</b>" and "phone" not in json.dumps(report)


def test_killed_ingest_is_restarted_and_alerts_keep_arriving(hub_server, mqtt_client):
    import os
    import signal
    import subprocess

    hub = hub_server
    officer = Officer(hub, *hub.add_user("operator"))
    unit_id, _token = hub.add_unit()

    def ingest_pids() -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(hub.proc.pid), "-f", "posko hub ingest"],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    before = ingest_pids()
    assert len(before) == 1  # exactly one subscriber, however many workers
    os.kill(before[0], signal.SIGKILL)
    after = wait_until(lambda: [p for p in ingest_pids() if p not in before], timeout=15)
    assert len(after) == 1
    alert = Alert(id=str(uuid.uuid4()), unit=unit_id, posko="Posko Uji", source="panic_button")

    def listed() -> bool:
        mqtt_client().publish(topics.alert(unit_id, hub.topic_root), alert.to_json(), qos=1)
        return alert.id in officer.get("/peringatan").text

    wait_until(listed, timeout=15, interval=1.0)
