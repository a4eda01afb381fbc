"""The kiosk's alert box and sender, and the hub's POST /api/v1/alerts (real hub, real HTTP)."""

from __future__ import annotations

import json
import sqlite3
import time

import requests

from kiosk_ui.alertbox import (
    ACKED,
    NOT_SENT,
    SENT,
    AlertBox,
    AlertSender,
    describe,
    hub_confirms,
    state_of,
)
from posko.hubclient import HubClient
from posko.messages import Alert
from tests.kiosk_ui.conftest import RealHub


def _alert(unit: str = "kiosk-test-1", source: str = "kiosk_darurat", n: int = 1) -> Alert:
    return Alert(id=f"00000000-0000-4000-8000-{n:012d}", unit=unit, posko="Posko Alun-alun", source=source,
                 text="tolong")


def test_states_move_forward_and_only_what_is_true_counts_as_sent(tmp_path) -> None:
    box = AlertBox.open(tmp_path / "alerts")
    seen = []
    box.on_change(lambda rec: seen.append(state_of(rec)))
    alert = _alert()
    assert box.add(alert) is True and box.add(alert) is False  # de-duplicated by id
    rec = box.get(alert.id)
    assert state_of(rec) == NOT_SENT and rec.sent_at is None and rec.sent_via == ""
    box.note_try(alert.id, "ConnectionError")  # a failed try changes nothing a resident reads
    assert state_of(box.get(alert.id)) == NOT_SENT
    box.mark_bridge(alert.id, at=100.0)
    assert state_of(box.get(alert.id)) == SENT and box.get(alert.id).sent_via == "bridge"
    box.mark_hub(alert.id, at=101.0)
    rec = box.get(alert.id)
    assert rec.sent_at == 100.0 and rec.sent_via == "bridge"  # the first path that got it
    box.mark_acked(alert.id, "Bripka Aziz", at=102.0)
    box.mark_acked(alert.id, "someone else", at=103.0)  # a repeat ack keeps the first
    rec = box.get(alert.id)
    assert state_of(rec) == ACKED and rec.acked_by == "Bripka Aziz"
    assert seen == [NOT_SENT, SENT, SENT, ACKED]
    assert describe(rec)["state"] == ACKED and box.undelivered() == []


def test_the_box_is_durable_wal_and_synchronous_full(tmp_path) -> None:
    box = AlertBox.open(tmp_path / "alerts")
    box.add(_alert())
    db = sqlite3.connect(box.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    conn = box._connect()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    conn.close()
    again = AlertBox.open(tmp_path / "alerts")  # a restarted kiosk
    assert [r.id for r in again.undelivered()] == [_alert().id]
    assert (tmp_path / "alerts").stat().st_mode & 0o777 == 0o700


def test_a_captive_portal_or_another_answer_is_not_the_hubs_receipt() -> None:
    aid = _alert().id
    assert hub_confirms(201, {"id": aid, "first": True}, aid)
    assert hub_confirms(200, {"id": aid, "first": False}, aid)
    assert not hub_confirms(200, None, aid)  # an HTML login page
    assert not hub_confirms(200, {"ok": True}, aid)
    assert not hub_confirms(302, {"id": aid}, aid)
    assert not hub_confirms(201, {"id": "other"}, aid)


def test_hub_alert_intake_is_idempotent_checks_the_unit_and_reports_the_ack(tmp_path) -> None:
    hub = RealHub(tmp_path / "hub").start()
    try:
        url = hub.url + "/api/v1/alerts"
        auth = {"Authorization": f"Bearer {hub.token}", "Content-Type": "application/json"}
        alert = _alert(unit=hub.unit)
        assert requests.post(url, data=alert.to_json(), headers={"Content-Type": "application/json"},
                             timeout=10).status_code == 401
        bad = requests.post(url, data=json.dumps({"id": "x", "unit": hub.unit, "time": 1}), headers=auth, timeout=10)
        assert bad.status_code == 422 and "source" in bad.json()["fields"]
        other = requests.post(url, data=_alert(unit="kiosk-other").to_json(), headers=auth, timeout=10)
        assert other.status_code == 403 and "unit" in other.json()["fields"]
        first = requests.post(url, data=alert.to_json(), headers=auth, timeout=10)
        assert first.status_code == 201 and first.json()["id"] == alert.id and first.json()["first"] is True
        again = requests.post(url, data=alert.to_json(), headers=auth, timeout=10)
        assert again.status_code == 200 and again.json()["first"] is False and again.json()["acked_by"] == ""
        db = sqlite3.connect(hub.folder / "var" / "hub" / "hub.db", timeout=10)
        assert db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM events WHERE kind='alert'").fetchone()[0] == 1  # on dashboards
        # the kiosk's sender learns of the acknowledgement over HTTP too (no MQTT needed)
        box = AlertBox.open(tmp_path / "kiosk")
        box.add(alert)
        sender = AlertSender(box, HubClient(hub.url, lambda: hub.token), ack_poll_s=0.0)
        sender.deliver()
        assert state_of(box.get(alert.id)) == SENT and box.get(alert.id).sent_via == "hub"
        db.execute("UPDATE alerts SET acked_at=?, acked_by=? WHERE id=?",
                   ("2026-12-24 14:41:00", "Bripka Aziz", alert.id))  # the officer's ack, as stored
        db.commit()
        db.close()
        sender.deliver()
        assert state_of(box.get(alert.id)) == ACKED and box.get(alert.id).acked_by == "Bripka Aziz"
    finally:
        hub.stop()


def test_the_sender_keeps_trying_until_the_hub_answers(tmp_path) -> None:
    hub = RealHub(tmp_path / "hub")
    box = AlertBox.open(tmp_path / "kiosk")
    alert = _alert(unit=hub.unit)
    box.add(alert)
    published = []
    sender = AlertSender(box, HubClient(hub.url, lambda: hub.token or None), publish_mqtt=published.append,
                         interval_s=0.2, timeout_s=1.0).start()
    try:
        time.sleep(1.0)
        assert state_of(box.get(alert.id)) == NOT_SENT and box.get(alert.id).attempts >= 2
        assert published and published[0].id == alert.id  # MQTT tried as well
        hub.start()
        deadline = time.monotonic() + 20
        while state_of(box.get(alert.id)) == NOT_SENT:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert box.get(alert.id).sent_via == "hub"
    finally:
        sender.stop()
        hub.stop()
