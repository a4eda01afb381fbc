"""The hub's side of the report path in the field: receipts with a digest, the ping that
names the hub, receipts for reconciliation, the quarantine of refused bodies on the fleet
page, implausible times kept, and a second machine on one unit id."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid

import requests

from posko.reports import digest
from tests.hub.support import Officer, report_body


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_answer_to_a_report_is_a_receipt_naming_its_id_and_digest(hub_server):
    hub = hub_server
    _unit, token = hub.add_unit()
    body = report_body()
    first = requests.post(f"{hub.base}/api/v1/reports", json=body, headers=auth(token), timeout=10)
    again = requests.post(f"{hub.base}/api/v1/reports", json=body, headers=auth(token), timeout=10)
    assert first.status_code == 201 and again.status_code == 200
    assert first.headers["Content-Type"].startswith("application/json")
    for answer in (first.json(), again.json()):
        assert answer["id"] == body["id"] and answer["digest"] == digest(body)


def test_ping_names_the_hub_and_gives_its_clock(hub_server):
    answer = requests.get(f"{hub_server.base}/api/v1/ping", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    data = answer.json()
    assert data["service"] == "posko-hub"
    hub_time = dt.datetime.fromisoformat(data["time"].replace("Z", "+00:00"))
    assert abs((hub_time - dt.datetime.now(dt.UTC)).total_seconds()) < 30


def test_receipts_list_only_this_units_reports_the_hub_holds(hub_server):
    hub = hub_server
    _a, token_a = hub.add_unit()
    _b, token_b = hub.add_unit()
    mine, theirs = report_body(), report_body()
    assert requests.post(f"{hub.base}/api/v1/reports", json=mine, headers=auth(token_a), timeout=10).ok
    assert requests.post(f"{hub.base}/api/v1/reports", json=theirs, headers=auth(token_b), timeout=10).ok
    never = str(uuid.uuid4())
    answer = requests.post(f"{hub.base}/api/v1/receipts", json={"ids": [mine["id"], theirs["id"], never]},
                           headers=auth(token_a), timeout=10)
    assert answer.status_code == 200
    assert answer.json()["receipts"] == {mine["id"]: digest(mine)}
    assert requests.post(f"{hub.base}/api/v1/receipts", json={"ids": ["x"] * 501},
                         headers=auth(token_a), timeout=10).status_code == 422
    assert requests.post(f"{hub.base}/api/v1/receipts", json={"ids": []}, timeout=10).status_code == 401


def test_an_implausible_time_is_accepted_kept_and_marked(hub_server):
    hub = hub_server
    _unit, token = hub.add_unit()
    officer = Officer(hub, *hub.add_user("operator"))
    ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
    for occurred in (ahead.isoformat(), "1996-01-01T08:00:00+07:00"):
        body = report_body(occurred_at=occurred)
        answer = requests.post(f"{hub.base}/api/v1/reports", json=body, headers=auth(token), timeout=10)
        assert answer.status_code == 201, answer.text
        from hub.models import Report

        with hub.db() as db:
            stored = db.get(Report, body["id"])
            assert stored.time_suspect is True
            expected = dt.datetime.fromisoformat(occurred).astimezone(dt.UTC).replace(tzinfo=None)
            assert stored.occurred_at == expected  # the kiosk's value, kept
            assert abs((stored.received_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds()) < 60
        # the officer is told the kiosk's time cannot be trusted, in the queue and on the report
        assert "jam kiosk" in officer.get(f"/laporan/{body['id']}/baris").text
        assert "Jam kiosk tampaknya salah" in officer.get(f"/laporan/{body['id']}").text
    plain = report_body()
    assert requests.post(f"{hub.base}/api/v1/reports", json=plain, headers=auth(token), timeout=10).status_code == 201
    assert "jam kiosk" not in officer.get(f"/laporan/{plain['id']}/baris").text


def test_a_refused_body_is_quarantined_and_shown_on_the_fleet_page(hub_server):
    hub = hub_server
    unit_id, token = hub.add_unit()
    body = report_body(description="motor\x00hilang di pasar")
    raw = json.dumps(body).encode()
    for _ in range(2):  # the kiosk retries the same body: one quarantined copy, counted twice
        answer = requests.post(f"{hub.base}/api/v1/reports", data=raw,
                               headers={**auth(token), "Content-Type": "application/json"}, timeout=10)
        assert answer.status_code == 422
        assert "control characters" in answer.json()["fields"]["description"]
    from hub.models import Quarantine

    with hub.db() as db:
        [kept] = db.query(Quarantine).filter_by(unit_id=unit_id).all()
        assert kept.count == 2 and kept.report_id == body["id"]
        assert kept.digest == hashlib.sha256(raw).hexdigest()
        assert json.loads(kept.body) == dict(body, pin="****")  # all but the resident's PIN
    officer = Officer(hub, *hub.add_user("operator"))
    fleet = officer.get("/armada").text
    assert "1 ditolak hub (karantina)" in fleet
    page = officer.get("/armada/karantina").text
    assert body["id"] in page and "control characters" in page and "motor" in page
    assert requests.get(f"{hub.base}/armada/karantina", timeout=10, allow_redirects=False).status_code in (302, 401)
    # without a unit token nothing is kept (anyone could fill the quarantine otherwise)
    requests.post(f"{hub.base}/api/v1/reports", data=raw, headers={"Content-Type": "application/json"}, timeout=10)
    with hub.db() as db:
        assert db.query(Quarantine).filter_by(digest=hashlib.sha256(raw).hexdigest()).count() == 1


def test_a_second_machine_on_one_unit_id_is_detected_and_shown(hub_server):
    hub = hub_server
    unit_id, first = hub.add_unit()
    from hub.units import rotate

    with hub.db() as db:
        code = rotate(db, unit_id, 24)
    second = requests.post(f"{hub.base}/api/v1/enroll", json={"unit": unit_id, "code": code},
                           timeout=10).json()["token"]
    assert requests.post(f"{hub.base}/api/v1/reports", json=report_body(), headers=auth(second),
                         timeout=10).status_code == 201
    refused = requests.post(f"{hub.base}/api/v1/reports", json=report_body(), headers=auth(first), timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == "token_replaced"
    assert requests.post(f"{hub.base}/api/v1/reports", json=report_body(), headers=auth("random-token"),
                         timeout=10).json()["error"] == "unauthorized"
    officer = Officer(hub, *hub.add_user("operator"))
    row = officer.get("/armada").text.split(f'data-unit="{unit_id}"')[1].split("</tr>")[0]
    assert "dua perangkat memakai ID ini" in row


def test_a_body_cut_mid_request_is_not_quarantined(hub_server):
    """A connection cut in the middle of a report (the field's flaky uplink) is not a
    refused report: nothing is kept, and the kiosk sends it whole again."""
    import socket

    hub = hub_server
    unit_id, token = hub.add_unit()
    raw = json.dumps(report_body()).encode()
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {token}\r\nContent-Length: {len(raw)}\r\n\r\n".encode()
                     + raw[: len(raw) // 2])
        sock.shutdown(socket.SHUT_WR)
        sock.recv(4096)
    from hub.models import Quarantine, Report

    with hub.db() as db:
        assert db.query(Quarantine).filter_by(unit_id=unit_id).count() == 0
        assert db.query(Report).filter_by(unit_id=unit_id).count() == 0
