"""The intake API over real HTTP against `posko hub serve`, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import stat
import uuid

import pytest
import requests
from PIL import Image

from hub.validation import body_hash
from posko.tickets import format_ticket, normalise_phone
from tests.hub.support import Officer, clean_env, report_body

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def post(hub, token, body, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{hub.base}/api/v1/reports", json=body, headers=headers, timeout=10, **kw)


def test_enrolment_via_cli_stores_token_0600_and_code_works_once(hub_server, tmp_path):
    hub = hub_server
    out = hub.cli("hub", "units", "add", "kiosk-enrol-" + uuid.uuid4().hex[:6]).stdout
    lines = out.strip().splitlines()
    unit_id = lines[0].split()[1]
    code = lines[-1]
    assert code == code.strip() and len(code.replace("-", "")) == 12  # alone on its last line

    unit_state = tmp_path / "unitvar"
    env = clean_env(POSKO_POSKO_STATE_DIR=str(unit_state), POSKO_POSKO_UNIT_ID=unit_id)
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "posko", "enroll", "--hub", hub.base, "--code", code],
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    token_file = unit_state / "unit" / "hub-token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    token = token_file.read_text().strip()

    from posko.config import load_settings
    from posko.enroll import read_token

    assert read_token(load_settings(environ=env)) == token
    assert post(hub, token, report_body()).status_code == 201

    again = requests.post(f"{hub.base}/api/v1/enroll", json={"unit": unit_id, "code": code}, timeout=10)
    assert again.status_code == 403 and again.json()["fields"] == {"code": "is wrong, used or expired"}
    failed = subprocess.run([sys.executable, "-m", "posko", "enroll", "--hub", hub.base, "--code", code],
                            env=env, capture_output=True, text=True, timeout=30)
    assert failed.returncode == 1 and "403" in failed.stderr
    assert token_file.read_text().strip() == token  # a refused enrolment keeps the old token


def test_revoke_and_rotate(hub_server):
    hub = hub_server
    unit_id, token = hub.add_unit()
    assert post(hub, token, report_body()).status_code == 201
    code = hub.cli("hub", "units", "rotate", unit_id).stdout.strip().splitlines()[-1]
    assert post(hub, token, report_body()).status_code == 201  # still valid until re-enrolment
    new = requests.post(f"{hub.base}/api/v1/enroll", json={"unit": unit_id, "code": code}, timeout=10)
    new_token = new.json()["token"]
    assert post(hub, token, report_body()).status_code == 401
    assert post(hub, new_token, report_body()).status_code == 201
    hub.cli("hub", "units", "revoke", unit_id)
    assert post(hub, new_token, report_body()).status_code == 401
    listing = hub.cli("hub", "units", "list").stdout
    assert unit_id in listing and "revoked" in listing


def test_no_or_bad_token_is_401(hub_server):
    assert post(hub_server, None, report_body()).status_code == 401
    response = post(hub_server, "not-a-token", report_body())
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


def test_idempotent_by_id(hub_server):
    hub = hub_server
    _unit, token = hub.add_unit()
    body = report_body()
    first = post(hub, token, body)
    assert first.status_code == 201
    assert first.json() == {"id": body["id"], "ticket": body["ticket"], "state": "baru", "missing_photos": [],
                            "digest": body_hash(body)}
    second = post(hub, token, body)
    assert second.status_code == 200 and second.json() == first.json()
    changed = dict(body, description=body["description"] + " (ubah)")
    conflict = post(hub, token, changed)
    assert conflict.status_code == 409 and "id" in conflict.json()["fields"]
    # Another unit replaying the id is a conflict too, never a silent merge.
    _other, other_token = hub.add_unit()
    assert post(hub, other_token, body).status_code == 409


def test_invalid_fields_are_named(hub_server):
    hub = hub_server
    _unit, token = hub.add_unit()
    body = report_body(category="perampokan", description="", occurred_at="2026-12-24T21:10:00",
                       location={"text": "Pasar", "lat": 95}, ticket="K7QM-4TZ0", pin="48a1",
                       photos=["abc"], reporter={"phone": "12345"}, extra=1)
    response = post(hub, token, body)
    assert response.status_code == 422
    fields = response.json()["fields"]
    assert set(fields) == {"category", "description", "occurred_at", "location.lat", "location.lon",
                           "ticket", "pin", "photos[0]", "reporter.phone", "extra"}
    assert post(hub, token, ["not", "an", "object"]).json()["fields"] == {"body": "must be a JSON object"}
    raw = requests.post(f"{hub.base}/api/v1/reports", data=b"{not json", timeout=10,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert raw.status_code == 422 and "body" in raw.json()["fields"]
    # Nothing half-written: the valid id of the bad request was not stored.
    assert post(hub, token, dict(report_body(), id=body["id"])).status_code == 201


def test_too_large_is_413(hub_server):
    hub = hub_server
    _unit, token = hub.add_unit()
    response = post(hub, token, report_body(description="x" * 70000))
    assert response.status_code == 413 and response.json()["error"] == "too_large"


def test_blocked_phone_after_three_pranks_is_kept_and_marked_and_can_be_lifted(hub_server):
    hub = hub_server
    _unit, token = hub.add_unit()
    supervisor = Officer(hub, *hub.add_user("supervisor"))
    phone = f"0813-{uuid.uuid4().int % 10**8:08d}"
    for _ in range(3):
        body = report_body(reporter={"name": "Iseng", "phone": phone})
        assert post(hub, token, body).status_code == 201
        done = supervisor.post(f"/laporan/{body['id']}/status",
                               {"state": "ditolak", "reason": "laporan palsu"}, allow_redirects=False)
        assert done.status_code == 303
    # The kiosk showed this resident a ticket: the hub keeps the report, marked for the officer.
    kept_body = report_body(reporter={"phone": phone.replace("0813", "+62 813")})
    kept = post(hub, token, kept_body)
    assert kept.status_code == 201
    with hub.db() as db:
        from hub.models import AuditEntry, Report

        stored = db.get(Report, kept_body["id"])
        assert stored.phone_blocked is True and stored.state == "baru"
        assert "nomor_diblokir" in [a.action for a in db.query(AuditEntry).filter_by(report_id=stored.id)]
    # ... and the night shift sees the mark in the queue, not only in the audit trail
    assert "nomor diblokir" in supervisor.get(f"/laporan/{kept_body['id']}/baris").text
    assert "nomor diblokir" not in supervisor.get(f"/laporan/{body['id']}/baris").text
    # No unit is handed the key that keys phone numbers in the database (nor any list).
    assert requests.get(f"{hub.base}/api/v1/blocked-phones", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code == 404

    page = supervisor.get("/blokir").text
    assert normalise_phone(phone) in page
    import re

    pattern = r'data-block-id="(\d+)">\s*<td class="mono">' + re.escape(normalise_phone(phone))
    block_id = re.search(pattern, page).group(1)
    assert supervisor.post(f"/blokir/{block_id}/cabut", page="/blokir").status_code == 200
    lifted_body = report_body(reporter={"phone": phone})
    assert post(hub, token, lifted_body).status_code == 201
    with hub.db() as db:
        from hub.models import Report

        assert db.get(Report, lifted_body["id"]).phone_blocked is False


def _jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (320, 240), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PoskoCam"  # Make
    gps = {1: "S", 2: (6.0, 54.0, 0.0), 3: "E", 4: (109.0, 44.0, 0.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    data = out.getvalue()
    check = Image.open(io.BytesIO(data)).getexif()
    assert check.get_ifd(0x8825), "the test image must carry GPS EXIF"
    return data


def test_photos_hash_strip_repeat_and_reject(hub_server):
    hub = hub_server
    _unit, token = hub.add_unit()
    auth = {"Authorization": f"Bearer {token}"}
    data = _jpeg_with_gps()
    sha = hashlib.sha256(data).hexdigest()
    body = report_body(photos=[sha])
    first = post(hub, token, body)
    assert first.status_code == 201 and first.json()["missing_photos"] == [sha]

    url = f"{hub.base}/api/v1/photos/{sha}"
    assert requests.put(url, data=data + b"x", headers=auth, timeout=10).status_code == 422
    assert requests.put(url, data=data, timeout=10).status_code == 401
    stored = requests.put(url, data=data, headers=auth, timeout=10)
    assert stored.status_code == 201 and stored.json()["mime"] == "image/jpeg"
    assert requests.put(url, data=data, headers=auth, timeout=10).status_code == 200
    assert post(hub, token, body).json()["missing_photos"] == []

    officer = Officer(hub, *hub.add_user("operator"))
    served = officer.get(f"/foto/{sha}")
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
    kept = Image.open(io.BytesIO(served.content))
    assert kept.size == (320, 240)
    assert not kept.getexif().get_ifd(0x8825) and len(kept.getexif()) == 0
    assert b"PoskoCam" not in served.content and b"Exif" not in served.content
    assert requests.get(f"{hub.base}/foto/{sha}", timeout=10, allow_redirects=False).status_code == 302

    text = b"this is not an image at all"
    bad = requests.put(f"{hub.base}/api/v1/photos/{hashlib.sha256(text).hexdigest()}", data=text,
                       headers=auth, timeout=10)
    assert bad.status_code == 415 and "body" in bad.json()["fields"]
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, "GIF")
    gif_sha = hashlib.sha256(gif.getvalue()).hexdigest()
    assert requests.put(f"{hub.base}/api/v1/photos/{gif_sha}", data=gif.getvalue(), headers=auth,
                        timeout=10).status_code == 415
    big = os.urandom(2_100_000)
    assert requests.put(f"{hub.base}/api/v1/photos/{hashlib.sha256(big).hexdigest()}", data=big,
                        headers=auth, timeout=30).status_code == 413
    assert requests.put(f"{hub.base}/api/v1/photos/NOTHEX", data=data, headers=auth,
                        timeout=10).status_code == 422


def test_ticket_lookup_no_oracle_and_rate_limit(hub_server):
    hub = hub_server
    unit_id, token = hub.add_unit()
    auth = {"Authorization": f"Bearer {token}"}
    body = report_body()
    assert post(hub, token, body).status_code == 201
    url = f"{hub.base}/api/v1/tickets/"
    good = requests.get(url + format_ticket(body["ticket"]).lower(), params={"pin": body["pin"]},
                        headers=auth, timeout=10)
    assert good.status_code == 200
    answer = good.json()
    assert answer["state"] == "baru" and answer["ticket"] == body["ticket"]
    assert "phone" not in good.text and "Sari" not in good.text  # never personal data

    wrong_pin = f"{(int(body['pin']) + 1) % 10000:04d}"
    a = requests.get(url + body["ticket"], params={"pin": wrong_pin}, headers=auth, timeout=10)
    b = requests.get(url + "ZZZZ2222", params={"pin": body["pin"]}, headers=auth, timeout=10)
    assert a.status_code == b.status_code == 404 and a.json() == b.json()
    for _ in range(4):  # limit is 5 failures per ticket and window in the test hub
        requests.get(url + body["ticket"], params={"pin": wrong_pin}, headers=auth, timeout=10)
    limited = requests.get(url + body["ticket"], params={"pin": body["pin"]}, headers=auth, timeout=10)
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    # One resident guessing at this kiosk does not lock Cek Laporan for the next one there.
    other = report_body()
    assert post(hub, token, other).status_code == 201
    assert requests.get(url + other["ticket"], params={"pin": other["pin"]}, headers=auth,
                        timeout=10).status_code == 200


def test_ticket_shows_state_and_public_note(hub_server):
    hub = hub_server
    _unit, token = hub.add_unit()
    body = report_body()
    post(hub, token, body)
    officer = Officer(hub, *hub.add_user("operator"))
    officer.post(f"/laporan/{body['id']}/status", {"state": "diverifikasi"})
    officer.post(f"/laporan/{body['id']}/catatan-publik", {"text": "Petugas sudah menghubungi Anda"})
    answer = requests.get(f"{hub.base}/api/v1/tickets/{body['ticket']}", params={"pin": body["pin"]},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert answer["state"] == "diverifikasi" and answer["state_label"] == "Diverifikasi"
    assert answer["note"] == "Petugas sudah menghubungi Anda"


def test_api_errors_are_json(hub_server):
    response = requests.get(f"{hub_server.base}/api/v1/nothing-here", timeout=10)
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    response = requests.delete(f"{hub_server.base}/api/v1/reports", timeout=10)
    assert response.status_code == 405 and "error" in response.json()


def test_concurrent_duplicates_and_collisions_give_exactly_one_report(hub_server):
    """Many connections at once (the group commit's batches): one 201 per id, repeats 200,
    a ticket collision refused without harming the reports written with it."""
    from concurrent.futures import ThreadPoolExecutor

    hub = hub_server
    _unit, token = hub.add_unit()
    same = report_body()
    distinct = [report_body() for _ in range(20)]
    collision = report_body(ticket=distinct[0]["ticket"])
    jobs = [same] * 10 + distinct + [collision]

    def send(body):
        with requests.Session() as http:
            return http.post(f"{hub.base}/api/v1/reports", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(send, jobs))
    same_codes = sorted(r.status_code for r in results[:10])
    assert same_codes == [200] * 9 + [201]
    assert {r.json()["id"] for r in results[:10]} == {same["id"]}
    distinct_codes = [r.status_code for r in results[10:30]]
    last = results[30]
    # whichever of the two with the same ticket came second is refused; the other is stored
    assert sorted([distinct_codes[0], last.status_code]) == [201, 409]
    assert distinct_codes[1:] == [201] * 19
    for body in distinct[1:] + [same]:
        again = send(body)
        assert again.status_code == 200


def test_dashboard_forms_need_csrf_and_queue_filters_and_pages(hub_server):
    hub = hub_server
    unit_id, token = hub.add_unit()
    officer = Officer(hub, *hub.add_user("operator"))
    body = report_body(category="bencana")
    assert post(hub, token, body).status_code == 201
    for _ in range(5):
        assert post(hub, token, report_body(category="gangguan")).status_code == 201
    # a logged-in officer without the form's CSRF token is refused, and nothing changes
    forged = officer.http.post(f"{hub.base}/laporan/{body['id']}/status", data={"state": "diverifikasi"},
                               timeout=10)
    assert forged.status_code == 400
    assert 'id="report-state">Baru' in officer.get(f"/laporan/{body['id']}").text

    page = officer.get(f"/laporan?unit={unit_id}&category=bencana").text
    assert page.count("data-report-id=") == 1 and body["id"] in page
    assert officer.get(f"/laporan?unit={unit_id}&state=selesai").text.count("data-report-id=") == 0
    wib_today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date().isoformat()
    dated = officer.get(f"/laporan?unit={unit_id}&dari={wib_today}&sampai={wib_today}").text
    assert "Halaman 1 dari 2" in dated and dated.count("data-report-id=") == 5  # page size 5 here
    assert officer.get(f"/laporan?unit={unit_id}&sampai=2000-01-01").text.count("data-report-id=") == 0
    second = officer.get(f"/laporan?unit={unit_id}&page=2").text
    assert "Halaman 2 dari 2" in second and second.count("data-report-id=") == 1
    assert officer.get(f"/laporan?unit={unit_id}&page=99").text.count("data-report-id=") == 1


def test_roles_guard_admin_and_supervisor_actions(hub_server):
    hub = hub_server
    operator = Officer(hub, *hub.add_user("operator"))
    supervisor = Officer(hub, *hub.add_user("supervisor"))
    unit_id, token = hub.add_unit()
    body = report_body()
    post(hub, token, body)
    assert operator.post("/armada/tambah", {"unit_id": "kiosk-evil"}).status_code == 403
    assert supervisor.post(f"/armada/{unit_id}/cabut").status_code == 403
    assert operator.post(f"/laporan/{body['id']}/pelapor").status_code == 403
    assert operator.get("/blokir").status_code == 403
    assert post(hub, token, report_body()).status_code == 201  # the unit was not revoked
    anonymous = requests.get(f"{hub.base}/laporan/{body['id']}", timeout=10, allow_redirects=False)
    assert anonymous.status_code == 302 and "/masuk" in anonymous.headers["Location"]


def test_live_stream_resumes_after_last_event_id(hub_server):
    hub = hub_server
    officer = Officer(hub, *hub.add_user("operator"))
    _unit, token = hub.add_unit()
    first, second = report_body(), report_body()

    import threading

    opened = threading.Event()

    def events_after(last_id: str | None, want: str) -> list[tuple[str, str]]:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        seen, current_id = [], None
        with officer.http.get(f"{hub.base}/live/stream", headers=headers, stream=True, timeout=10) as stream:
            for line in stream.iter_lines(decode_unicode=True):
                opened.set()  # the first line ("retry: …") comes after the start point is fixed
                if line.startswith("id: "):
                    current_id = line[4:]
                elif line.startswith("data: "):
                    seen.append((current_id, line[6:]))
                    if want in line:
                        return seen
        return seen

    got: list = []
    reader = threading.Thread(target=lambda: got.extend(events_after(None, first["id"])))
    reader.start()
    assert opened.wait(10)  # the stream starts at the newest event; send once it is open
    post(hub, token, first)
    reader.join(15)
    first_id = [i for i, data in got if first["id"] in data][0]
    post(hub, token, second)  # sent while no stream is open
    resumed = events_after(first_id, second["id"])
    assert [data for _i, data in resumed if second["id"] in data]
    assert not [data for _i, data in resumed if first["id"] in data]  # nothing twice
