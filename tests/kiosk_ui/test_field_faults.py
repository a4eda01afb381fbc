"""What the field does to the outbox (issue "reports that no network, clock or disk can lose"),
each against the real hub: a captive portal, input refused after the ticket, wrong clocks,
the hub coming back, a second kiosk on one id, a full disk, a huge image, a blocked number,
and proof of delivery."""

from __future__ import annotations

import io
import json
import os
import random
import sqlite3
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from PIL import Image

from kiosk_ui.app import create_app
from kiosk_ui.outbox import Outbox
from kiosk_ui.sync import CLOCK_OFFSET_KEY, RECONCILE_KEY, SyncWorker
from posko.hubclient import HubClient
from tests.kiosk_ui.captive import CaptivePortal
from tests.kiosk_ui.conftest import fill_disk, make_settings
from tests.kiosk_ui.test_faults import KioskProcess
from tests.kiosk_ui.test_sync import REPORT, noise_photo, run_until_synced, worker_for

pytestmark = pytest.mark.timeout(180)


# -- 1. captive portal ------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["portal", "redirect"])
def test_a_captive_portal_never_gets_a_report_marked_synced_and_the_real_hub_later_gets_all(
        tmp_path, hub_unit, mode) -> None:
    hub = hub_unit
    portal = CaptivePortal(hub.port, mode)
    try:
        box = Outbox.open(tmp_path / "outbox")
        ids = [box.submit(dict(REPORT, description=f"lewat hotspot {i}"),
                          [noise_photo(40 + i, (320, 240))] if i % 2 else []).id for i in range(4)]
        worker = worker_for(box, portal.url, hub.token)
        for _ in range(4):
            worker.run_once()
            worker._last_probe = None  # probe again on the next pass
            box.wake_all()  # and every failed try is due again at once in this test
        assert portal.requests >= 8, "the portal should really have answered"
        for report_id in ids:
            item = box.get(report_id)
            assert item.state == "pending" and not item.posted, (item.state, item.last_error)
        assert "not the hub" in box.get(ids[0]).last_error
        assert worker.link.online is False  # the screens do not show "online"
        assert "not the hub" in worker.link.last_error
        assert HubClient(portal.url, lambda: hub.token).ping() is False
        assert hub.state()["reports"] == []
        portal.mode = "pass"  # the resident's operator lets traffic through again
        run_until_synced(worker, box, ids)
        state = hub.state()
        assert sorted(r["id"] for r in state["reports"]) == sorted(ids)
        assert all(p in state["photos"] for r in state["reports"] for p in r["photos"])
        assert worker.link.online is True
    finally:
        portal.close()


# -- 3. wrong clocks ----------------------------------------------------------------------
def test_the_kiosk_learns_the_hubs_clock_offset_from_its_probe(tmp_path, hub_unit, monkeypatch) -> None:
    import posko.hubclient as hubclient

    real = time.time
    monkeypatch.setattr(hubclient.time, "time", lambda: real() + 25 * 3600)  # 25 h ahead
    box = Outbox.open(tmp_path / "outbox")
    worker = worker_for(box, hub_unit.url, hub_unit.token)
    assert worker.probe() is True
    offset = float(box.get_meta(CLOCK_OFFSET_KEY))
    assert abs(offset + 25 * 3600) < 5


@pytest.mark.parametrize("shift", [dt_shift for dt_shift in (25 * 3600, 2 * 86400)] + ["1996"])
def test_a_report_with_an_implausible_time_is_kept_marked_and_ordered_by_receipt(tmp_path, hub_unit, shift) -> None:
    import datetime as dt

    if shift == "1996":  # a dead RTC battery
        occurred = dt.datetime(1996, 1, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    else:
        occurred = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=shift)
    box = Outbox.open(tmp_path / "outbox")
    receipt = box.submit(dict(REPORT, occurred_at=occurred.isoformat()))
    run_until_synced(worker_for(box, hub_unit.url, hub_unit.token), box, [receipt.id])
    [stored] = hub_unit.state()["reports"]
    assert stored["time_suspect"] is True
    assert stored["occurred_at"].startswith(occurred.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"))
    received = dt.datetime.fromisoformat(stored["received_at"])
    assert abs((received - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds()) < 60


def test_a_clock_stepped_back_an_hour_does_not_delay_waiting_reports(tmp_path, hub_unit) -> None:
    box = Outbox.open(tmp_path / "outbox")
    ids = [box.submit(dict(REPORT, description=f"jam mundur {i}")).id for i in range(3)]
    offset = {"s": 0.0}
    worker = worker_for(box, hub_unit.url, hub_unit.token, probe_s=5.0, base_s=2.0, cap_s=30.0,
                        clock=lambda: time.time() + offset["s"])
    worker.link.set(False, "was offline")
    for report_id in ids:  # a failed try just before the step: next attempt in 10 s
        box.mark_retry(report_id, "network: down", time.time() + 10)
    worker._last_probe = worker.monotonic()
    offset["s"] = -3600.0  # the clock is stepped back an hour (NTP, a dead RTC battery)
    time.sleep(0.1)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(box.get(i).state != "synced" for i in ids):
        worker.run_once()
        time.sleep(0.2)
    assert all(box.get(i).state == "synced" for i in ids), [box.get(i).next_attempt_at for i in ids]
    assert worker.link.online is True


# -- 4. the hub comes back ---------------------------------------------------------------
def test_30_queued_reports_15_with_photos_arrive_within_20_s_of_the_hubs_return(tmp_path, hub_process) -> None:
    hub = hub_process()
    hub.stop()
    box = Outbox.open(tmp_path / "outbox")
    ids = []
    for i in range(30):
        photos = [noise_photo(200 + i, (640, 480))] if i % 2 == 0 else []
        ids.append(box.submit(dict(REPORT, description=f"antre saat hub mati {i}"), photos).id)
    rng = random.Random(3)
    # as a 3-minute outage leaves them: several failed tries each, next attempts spread out
    # up to the 300 s cap, with one report due right now
    for n, report_id in enumerate(ids):
        for _ in range(6):
            box.mark_retry(report_id, "network: ConnectionError", 0)
        box.mark_retry(report_id, "network: ConnectionError",
                       time.time() + (0 if n == 0 else rng.uniform(60, 300)))
    worker = SyncWorker(box, HubClient(hub.url, lambda: hub.token, timeout_s=5), base_s=2.0,
                        cap_s=300.0, probe_s=60.0, interval_s=5.0, rng=random.Random(1))
    worker.link.set(False, "hub down")
    worker._last_probe = worker.monotonic()  # it probed (and failed) just before the return
    hub.start()
    returned = time.monotonic()
    worker.start()
    worker.wake()
    try:
        while time.monotonic() - returned < 20 and box.stats()["pending"]:
            time.sleep(0.2)
    finally:
        worker.stop()
    elapsed = time.monotonic() - returned
    assert box.stats()["pending"] == 0, f"{box.stats()['pending']} still waiting after {elapsed:.0f} s"
    state = hub.state()
    assert len(state["reports"]) == 30
    assert all(p in state["photos"] for r in state["reports"] for p in r["photos"])
    assert sum(1 for r in state["reports"] if r["photos"]) == 15


# -- 5. two kiosks on one unit id ----------------------------------------------------------
def test_a_second_machine_on_one_id_is_seen_by_the_hub_and_the_new_token_retries_by_itself(
        tmp_path, shared_hub) -> None:
    import uuid

    unit = f"kiosk-{uuid.uuid4().hex[:8]}"
    first_token = shared_hub.add_unit(unit)
    box = Outbox.open(tmp_path / "outbox")
    token = {"value": first_token}
    worker = SyncWorker(box, HubClient(shared_hub.url, lambda: token["value"]), base_s=0.05, cap_s=0.1)
    # the spare (a cloned SD card) enrols on the same id: this kiosk's token is replaced
    shared_hub.enrol(unit, shared_hub.new_code(unit))
    receipt = box.submit(REPORT)
    worker.run_once()
    item = box.get(receipt.id)
    assert item.state == "parked" and item.parked_reason.startswith("401")
    assert "token_replaced" in item.parked_reason or "enrolled again" in item.parked_reason
    assert shared_hub.state()["units"][unit]["duplicate_count"] >= 1
    # this kiosk is enrolled again (a new code): its parked report goes without `outbox retry`
    token["value"] = shared_hub.enrol(unit, shared_hub.new_code(unit))
    run_until_synced(worker, box, [receipt.id])


# -- 6. a full disk ----------------------------------------------------------------------------
def test_a_full_disk_backs_off_instead_of_resending_and_doctor_says_disk_full(tmp_path, tiny_fs, hub_unit) -> None:
    from posko.doctor import FAIL, check_outbox

    settings = make_settings(tmp_path / "cfg", POSKO_KIOSK_OUTBOX_PATH=str(tiny_fs / "outbox"),
                             POSKO_KIOSK_HUB_URL=hub_unit.url)
    app = create_app({"SETTINGS": settings, "START_BRAIN": False})
    from tests.kiosk_ui.conftest import ServedApp

    served = ServedApp(app)
    try:
        box = app.extensions["kiosk"].outbox
        box.submit(REPORT, [noise_photo(9, (320, 240))])
        filler = fill_disk(tiny_fs)
        worker = worker_for(box, hub_unit.url, hub_unit.token, base_s=1.0, cap_s=60.0, interval_s=0.2)
        calls = {"n": 0}
        for name in ("post_report", "put_photo"):
            real = getattr(worker.client, name)

            def counted(*args, _real=real):
                calls["n"] += 1
                return _real(*args)

            setattr(worker.client, name, counted)
        worker.start()
        time.sleep(3.0)
        worker.stop()
        assert 1 <= calls["n"] <= 6, f"{calls['n']} requests in 3 s on a full disk"
        stats = requests.get(served.url + "/api/outbox", timeout=5).json()
        assert stats["storage_full"] is True and stats["pending"] == 1
        doctor_settings = make_settings(tmp_path / "cfg2", POSKO_KIOSK_PORT=str(served.server.server_port))
        check = check_outbox(doctor_settings)
        assert check.status == FAIL and "FULL" in check.detail
        filler.unlink()  # space again: the report goes
        worker = worker_for(box, hub_unit.url, hub_unit.token)
        deadline = time.monotonic() + 20
        while box.stats()["pending"] and time.monotonic() < deadline:
            worker.run_once()
            time.sleep(0.1)
        assert box.stats()["pending"] == 0 and box.stats()["storage_full"] is False
    finally:
        served.stop()


# -- 7. a large image --------------------------------------------------------------------------
def png_of(width: int, height: int, rgba: bool = False) -> bytes:
    """A valid PNG of one colour, made row by row (never held decoded in this process)."""
    bpp, colour = (4, 6) if rgba else (1, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes([120]) * (width * bpp)
    packer = zlib.compressobj(6)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _worker_pid(master: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("no gunicorn worker")


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_a_huge_image_is_refused_before_decoding_and_the_kiosk_stays_under_300_mb(tmp_path, hub_unit) -> None:
    bomb = png_of(13000, 13000)
    assert len(bomb) < 1_000_000  # a small file ...
    largest = png_of(6000, 4000, rgba=True)  # the most pixels the kiosk accepts (24 MP), 4 bytes each
    folder = tmp_path / "kiosk"
    folder.mkdir()
    kiosk = KioskProcess(folder, hub_unit.url, hub_unit.token).start()
    try:
        worker = _worker_pid(kiosk.proc.pid)
        form = {"category": "lainnya", "description": "foto besar", "where": "here"}
        answer = requests.post(kiosk.url + "/api/lapor", data=form,
                               files={"photo": ("besar.png", bomb, "image/png")}, timeout=60)
        assert answer.status_code == 422 and answer.json()["fields"] == ["photo"]
        answer = requests.post(kiosk.url + "/api/lapor", data=form,
                               files={"photo": ("besar.png", largest, "image/png")}, timeout=60)
        assert answer.status_code == 200, answer.text
        jpeg = io.BytesIO()
        Image.new("RGB", (6000, 4000), (90, 120, 30)).save(jpeg, "JPEG", quality=80)
        answer = requests.post(kiosk.url + "/api/lapor", data=form,
                               files={"photo": ("kamera.jpg", jpeg.getvalue(), "image/jpeg")}, timeout=60)
        assert answer.status_code == 200, answer.text
        peak = _peak_mb(worker)
        assert peak < 300, f"kiosk worker peaked at {peak:.0f} MB"
        assert kiosk.outbox().stats()["pending"] + len(hub_unit.state()["reports"]) >= 2
    finally:
        kiosk.kill()


# -- 8. a blocked phone number --------------------------------------------------------------------
def test_a_blocked_number_gets_its_ticket_and_the_hub_keeps_the_report_marked(tmp_path, hub_unit) -> None:
    hub_unit.hub.block_phone("0811-2222-3333")
    app = create_app({"SETTINGS": make_settings(tmp_path), "START_BRAIN": False})
    box = app.extensions["kiosk"].outbox
    answer = app.test_client().post("/api/lapor", data={
        "category": "gangguan", "description": "suara petasan", "where": "here",
        "phone": "0811-2222-3333", "consent": "1"})
    assert answer.status_code == 200 and answer.get_json()["ticket"]  # the ticket is shown ...
    report_id = answer.get_json()["id"]
    run_until_synced(worker_for(box, hub_unit.url, hub_unit.token), box, [report_id])
    [stored] = hub_unit.state()["reports"]  # ... and true: the hub has it, marked for the officer
    assert stored["id"] == report_id and stored["phone_blocked"] is True
    assert box.get(report_id).state == "synced"


# -- 9. proof of delivery ---------------------------------------------------------------------------
def _lose_at_hub(hub, report_id: str) -> None:
    """The hub loses a report (restored from an older backup)."""
    db = sqlite3.connect(hub.db_path, timeout=10)
    try:
        db.execute("DELETE FROM audit WHERE report_id=?", (report_id,))
        db.execute("DELETE FROM reports WHERE id=?", (report_id,))
        db.commit()
    finally:
        db.close()


def test_outbox_reconcile_finds_what_the_hub_lacks_resends_it_and_says_so(tmp_path, hub_unit) -> None:
    from kiosk_ui.cli import outbox as outbox_cli
    from posko.enroll import write_token

    env = {"POSKO_CONFIG": str(tmp_path / "posko.toml"), "POSKO_POSKO_STATE_DIR": str(tmp_path / "var"),
           "POSKO_KIOSK_HUB_URL": hub_unit.url}
    settings = make_settings(tmp_path, **env)
    write_token(settings, hub_unit.token)
    box = Outbox.open(tmp_path / "var" / "kiosk" / "outbox")
    ids = [box.submit(dict(REPORT, description=f"bukti kirim {i}"),
                      [noise_photo(70, (320, 240))] if i == 1 else []).id for i in range(3)]
    run_until_synced(worker_for(box, hub_unit.url, hub_unit.token), box, ids)
    _lose_at_hub(hub_unit.hub, ids[1])
    runner = CliRunner()
    result = runner.invoke(outbox_cli, ["reconcile", "--json"], env=env)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["checked"] == 3 and summary["missing"] == [ids[1]] and summary["resent"] == 1
    assert box.get(ids[1]).state == "pending" and not box.get(ids[1]).posted
    run_until_synced(worker_for(box, hub_unit.url, hub_unit.token), box, ids)
    assert sorted(r["id"] for r in hub_unit.state()["reports"]) == sorted(ids)
    result = runner.invoke(outbox_cli, ["reconcile"], env=env)
    assert result.exit_code == 0 and "3 at the hub, 0 missing" in result.output


def test_the_sync_worker_reconciles_by_itself_once_a_day(tmp_path, hub_unit) -> None:
    box = Outbox.open(tmp_path / "outbox")
    ids = [box.submit(dict(REPORT, description=f"harian {i}")).id for i in range(2)]
    worker = worker_for(box, hub_unit.url, hub_unit.token, reconcile_every_s=86400.0)
    run_until_synced(worker, box, ids)
    first = json.loads(box.get_meta(RECONCILE_KEY))
    assert first["checked"] >= 0  # the first pass online reconciled
    _lose_at_hub(hub_unit.hub, ids[0])
    worker.run_once()
    assert box.get(ids[0]).state == "synced"  # not again within the day
    worker._last_reconcile = worker.monotonic() - 86401  # a day later
    worker.run_once()
    assert json.loads(box.get_meta(RECONCILE_KEY))["missing"] == [ids[0]]
    run_until_synced(worker, box, ids)
    assert sorted(r["id"] for r in hub_unit.state()["reports"]) == sorted(ids)


def test_reports_in_an_outbox_of_the_previous_schema_all_still_sync(tmp_path, hub_unit) -> None:
    """A kiosk upgraded in the field: its version-0 outbox (made by CREATE TABLE IF NOT EXISTS,
    no user_version) holds unsynced reports and photos; after the upgrade all of them sync."""
    from kiosk_ui import outbox as outbox_mod
    from posko.reports import canonical_json

    folder = tmp_path / "old-outbox"
    (folder / "photos").mkdir(parents=True)
    db = sqlite3.connect(folder / "outbox.db")
    db.executescript(outbox_mod.SCHEMA)  # exactly what the previous release created
    db.execute("INSERT INTO meta(key, value) VALUES ('blocklist_secret', 'old-key')")
    db.execute("INSERT INTO blocked_phones(key) VALUES ('abc')")
    photos = [noise_photo(80 + i, (320, 240)) for i in range(2)]
    made = []
    for i in range(4):
        from posko.tickets import new_pin, new_ticket

        report_id, ticket, pin = f"00000000-0000-4000-8000-00000000000{i}", new_ticket(), new_pin()
        names = [photos[i].sha256] if i < 2 else []
        body = dict(REPORT, description=f"dari versi lama {i}", id=report_id, ticket=ticket, pin=pin,
                    photos=names)
        db.execute("INSERT INTO reports VALUES (?,?,?,?,?)", (report_id, ticket, pin, canonical_json(body),
                                                              time.time() - 3600 + i))
        for name in names:
            db.execute("INSERT INTO photos(report_id, sha256, size) VALUES (?,?,?)",
                       (report_id, name, len(photos[i].data)))
            (folder / "photos" / f"{name}.jpg").write_bytes(photos[i].data)
        # one was half-way: the hub had answered for the report, not yet for its photo
        db.execute("INSERT INTO outbox(report_id, state, attempts, next_attempt_at, updated_at, posted) "
                   "VALUES (?, 'pending', ?, 0, ?, ?)", (report_id, i, time.time(), 0))
        made.append(report_id)
    db.commit()
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    db.close()
    old = os.stat(folder / "photos" / f"{photos[0].sha256}.jpg").st_mtime
    os.utime(folder / "photos" / f"{photos[0].sha256}.jpg", (old - 120, old - 120))

    box = Outbox.open(folder)
    with box._connect() as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == outbox_mod.SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "blocked_phones" not in tables and box.get_meta("blocklist_secret") == ""
    assert box.stats()["pending"] == 4
    run_until_synced(worker_for(box, hub_unit.url, hub_unit.token), box, made)
    state = hub_unit.state()
    assert sorted(r["id"] for r in state["reports"]) == sorted(made)
    assert {p.sha256 for p in photos} <= set(state["photos"])
    Outbox.open(folder)  # opening again is a no-op
    with sqlite3.connect(folder / "outbox.db") as conn:
        conn.execute(f"PRAGMA user_version = {outbox_mod.SCHEMA_VERSION + 1}")
    with pytest.raises(outbox_mod.TooNew):
        Outbox.open(folder)


def test_nothing_left_running(tmp_path) -> None:
    """Each test above stopped its threads (a stray worker would keep posting)."""
    names = [t.name for t in threading.enumerate() if t.name == "kiosk-sync"]
    assert names == []


def test_cek_laporan_behind_a_captive_portal_answers_offline_not_online(tmp_path, hub_unit) -> None:
    portal = CaptivePortal(hub_unit.port, "portal")
    try:
        settings = make_settings(tmp_path, POSKO_KIOSK_HUB_URL=portal.url)
        app = create_app({"SETTINGS": settings, "START_BRAIN": False,
                          "TOKEN_PROVIDER": lambda: hub_unit.token})
        box = app.extensions["kiosk"].outbox
        receipt = box.submit(REPORT)
        answer = app.test_client().post("/api/cek", json={"ticket": receipt.ticket, "pin": receipt.pin})
        data = answer.get_json()
        assert data["offline"] is True and data["state"] == "menunggu"
        assert app.extensions["kiosk"].link.online is False
        assert portal.requests >= 1
    finally:
        portal.close()
