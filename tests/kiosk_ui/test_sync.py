"""The sync worker against the real hub over real HTTP: idempotency, parking, photos, the proxy."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import time

import pytest
import requests
from PIL import Image

from kiosk_ui.outbox import Outbox
from kiosk_ui.photos import prepare_photo
from kiosk_ui.sync import SyncWorker
from posko.hubclient import HubClient
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.timeout(90)

REPORT = {"category": "pencurian", "description": "motor beat hitam plat G 1234 XY hilang",
          "occurred_at": "2026-11-20T21:10:00+07:00", "location": {"text": "Posko Alun-alun"}}


def noise_photo(seed: int, size=(1600, 1200)):
    rnd = random.Random(seed)
    img = Image.frombytes("RGB", size, rnd.randbytes(size[0] * size[1] * 3))
    raw = io.BytesIO()
    img.save(raw, "PNG")
    return prepare_photo(raw.getvalue())


def worker_for(box: Outbox, url: str, token: str | None, **kw) -> SyncWorker:
    kw.setdefault("probe_s", 0.1)
    kw.setdefault("base_s", 0.05)
    kw.setdefault("cap_s", 0.2)
    return SyncWorker(box, HubClient(url, lambda: token, timeout_s=5), rng=random.Random(1), **kw)


def run_until_synced(worker: SyncWorker, box: Outbox, ids, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        worker.run_once()
        if all(box.get(i).state == "synced" for i in ids):
            return
        time.sleep(0.05)
    raise AssertionError({i: (box.get(i).state, box.get(i).last_error) for i in ids})


def test_report_and_photo_reach_the_hub_once_and_the_photo_is_verified(tmp_path, hub_unit) -> None:
    hub = hub_unit
    box = Outbox.open(tmp_path / "outbox")
    photo = noise_photo(1, (800, 600))
    receipt = box.submit(REPORT, [photo])
    worker = worker_for(box, hub.url, hub.token)
    run_until_synced(worker, box, [receipt.id])
    state = hub.state()
    assert [r["ticket"] for r in state["reports"]] == [receipt.ticket]
    assert list(state["photos"]) == [photo.sha256]  # stored re-encoded, under the kiosk's hash
    item = box.get(receipt.id)
    assert item.posted and item.hub_state == "baru" and item.photos[0]["uploaded"]
    assert item.hub_digest == state["reports"][0]["body_hash"]  # the hub's receipt was checked
    calls = []
    real_post = worker.client.post_report
    worker.client.post_report = lambda body: calls.append(body) or real_post(body)
    worker.run_once()  # nothing left to send
    assert calls == []
    assert box.stats()["pending"] == 0


def test_a_kiosk_that_died_after_the_hubs_201_gets_the_same_answer_again(tmp_path, hub_unit) -> None:
    hub = hub_unit
    box = Outbox.open(tmp_path / "outbox")
    receipt = box.submit(REPORT)
    # the POST went through but the kiosk was killed before it wrote down the answer
    first = requests.post(hub.url + "/api/v1/reports", data=box.body_bytes(receipt.id),
                          headers={"Authorization": f"Bearer {hub.token}",
                                   "Content-Type": "application/json"}, timeout=5)
    assert first.status_code == 201
    worker = worker_for(box, hub.url, hub.token)
    answers = []
    real_post = worker.client.post_report
    worker.client.post_report = lambda body: answers.append(real_post(body)) or answers[-1]
    run_until_synced(worker, box, [receipt.id])
    state = hub.state()
    assert len(state["reports"]) == 1
    assert [a.status for a in answers] == [200]  # the original answer, again
    assert answers[0].data["id"] == receipt.id and answers[0].data["digest"] == first.json()["digest"]


def test_refusals_park_with_a_reason_and_retry_brings_them_back(tmp_path, hub_unit) -> None:
    hub = hub_unit
    box = Outbox.open(tmp_path / "outbox")
    blocked = box.submit(dict(REPORT, category="lainnya"))
    bad = box.submit(dict(REPORT, category="lainnya"))
    # make the stored bodies invalid for the hub, as a kiosk of an older version might
    with box._tx() as db:
        for report_id, change in ((bad.id, {"description": ""}), (blocked.id, {"category": "lain"})):
            body = json.loads(db.execute("SELECT body FROM reports WHERE id=?", (report_id,)).fetchone()[0])
            body.update(change)
            db.execute("UPDATE reports SET body=? WHERE id=?", (json.dumps(body), report_id))
    worker = worker_for(box, hub.url, hub.token)
    for _ in range(3):
        worker.run_once()
    assert box.get(blocked.id).state == "parked"
    assert box.get(blocked.id).parked_reason.startswith("422")
    assert "category" in box.get(blocked.id).parked_reason
    assert box.get(bad.id).state == "parked" and box.get(bad.id).parked_reason.startswith("422")
    assert "description" in box.get(bad.id).parked_reason
    assert box.stats()["parked"] == 2
    attempts = box.get(blocked.id).attempts
    for _ in range(3):
        worker.run_once()
    assert box.get(blocked.id).attempts == attempts  # not retried forever
    assert box.purge_synced(0) == 0 and len(box.list()) == 2  # never deleted silently
    assert box.retry(blocked.id).state == "pending"


def test_a_wrong_token_parks_with_401_and_a_new_token_retries_it_by_itself(tmp_path, hub_unit) -> None:
    hub = hub_unit
    box = Outbox.open(tmp_path / "outbox")
    receipt = box.submit(REPORT)
    token = {"value": "revoked"}
    worker = SyncWorker(box, HubClient(hub.url, lambda: token["value"]), base_s=0.05, cap_s=0.1)
    worker.run_once()
    assert box.get(receipt.id).state == "parked"
    assert "401" in box.get(receipt.id).parked_reason
    worker.run_once()
    assert box.get(receipt.id).state == "parked"  # the same token: not retried for ever
    token["value"] = hub.token  # re-enrolled: no `posko outbox retry` needed
    run_until_synced(worker, box, [receipt.id])


def test_same_id_with_a_different_body_is_parked_as_a_conflict(tmp_path, hub_unit) -> None:
    hub = hub_unit
    box = Outbox.open(tmp_path / "outbox")
    receipt = box.submit(REPORT)
    other = json.loads(box.body_bytes(receipt.id))
    other["description"] = "something else"
    requests.post(hub.url + "/api/v1/reports", json=other,
                  headers={"Authorization": f"Bearer {hub.token}"}, timeout=5)
    worker_for(box, hub.url, hub.token).run_once()
    assert box.get(receipt.id).parked_reason.startswith("409")


def test_not_enrolled_means_nothing_is_sent_and_nothing_parked(tmp_path, hub_unit) -> None:
    hub = hub_unit
    box = Outbox.open(tmp_path / "outbox")
    receipt = box.submit(REPORT)
    worker = worker_for(box, hub.url, None)
    worker.run_once()
    assert box.get(receipt.id).state == "pending" and box.get(receipt.id).attempts == 0
    assert worker.link.enrolled is False
    assert hub.state()["reports"] == [] and hub.state()["quarantine"] == []


def test_when_the_hub_comes_back_waiting_reports_go_at_once_not_after_the_backoff(tmp_path, hub_process) -> None:
    hub = hub_process()
    hub.stop()
    box = Outbox.open(tmp_path / "outbox")
    ids = [box.submit(dict(REPORT, description=f"laporan {i}")).id for i in range(3)]
    # a long backoff: without the reconnect wake-up these would wait minutes
    worker = worker_for(box, hub.url, hub.token, base_s=120.0, cap_s=300.0, probe_s=0.2)
    worker.run_once()
    assert worker.link.online is False
    first = box.get(ids[0])
    assert first.attempts == 1 and first.last_error.startswith("network")
    assert first.next_attempt_at - time.time() > 10  # its own backoff is long (seeded rng)
    hub.start()
    started = time.monotonic()
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(box.get(i).state != "synced" for i in ids):
            time.sleep(0.05)
    finally:
        worker.stop()
    assert all(box.get(i).state == "synced" for i in ids), [
        (box.get(i).state, box.get(i).attempts, box.get(i).last_error) for i in ids]
    assert time.monotonic() - started < 10
    assert len(hub.state()["reports"]) == 3


def test_the_proxy_cuts_the_photo_upload_midway_and_the_hub_ends_with_the_whole_photo(tmp_path, hub_unit) -> None:
    hub = hub_unit
    proxy = TcpProxy(hub.port)
    try:
        box = Outbox.open(tmp_path / "outbox")
        photo = noise_photo(7)
        assert len(photo.data) > 500_000
        receipt = box.submit(REPORT, [photo])
        proxy.cut_next(after_bytes=200_000)  # only the photo upload is that large
        worker = worker_for(box, proxy.url, hub.token)
        worker.run_once()
        item = box.get(receipt.id)
        assert proxy.cut_done == 1
        assert item.posted and not item.photos[0]["uploaded"] and item.state == "pending"
        assert item.last_error.startswith("network")
        assert hub.state()["photos"] == {}  # nothing half-stored at the hub
        run_until_synced(worker, box, [receipt.id])
        stored = hub.state()["photos"]
        # the hub stores a photo only after checking the SHA-256 of every byte it received
        assert list(stored) == [photo.sha256] and stored[photo.sha256] > 100_000
        assert hashlib.sha256(box.read_photo(photo.sha256)).hexdigest() == photo.sha256
        assert len(hub.state()["reports"]) == 1
    finally:
        proxy.close()


def test_synced_reports_and_their_photos_are_purged_after_the_retention(tmp_path, hub_unit) -> None:
    hub = hub_unit
    box = Outbox.open(tmp_path / "outbox")
    photo = noise_photo(3, (320, 240))
    old = box.submit(REPORT, [photo])
    waiting = box.submit(dict(REPORT, description="masih menunggu"))
    run_until_synced(worker_for(box, hub.url, hub.token), box, [old.id, waiting.id])
    box.mark_synced(old.id, now=time.time() - 15 * 86400)
    with box._tx() as db:
        db.execute("UPDATE outbox SET state='pending' WHERE report_id=?", (waiting.id,))
    assert box.purge_synced(14 * 86400) == 1
    assert [i.id for i in box.list()] == [waiting.id]
    assert not os.path.exists(box.photo_path(photo.sha256))
