"""Faults with real processes: `posko kiosk-ui` (gunicorn + sync worker) and a hub process.

* the hub is down during 20 submissions, then up: every report arrives exactly once;
* the kiosk process group is SIGKILLed at random points during 50 submit/sync cycles:
  every report whose ticket was shown reaches the hub exactly once, none is invented.
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from kiosk_ui.outbox import Outbox
from posko.broker import free_port, port_is_free
from tests.kiosk_ui.conftest import make_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def small_png(seed: int) -> bytes:
    rnd = random.Random(seed)
    out = io.BytesIO()
    Image.frombytes("RGB", (320, 240), rnd.randbytes(320 * 240 * 3)).save(out, "PNG")
    return out.getvalue()


class KioskProcess:
    """`python -m posko kiosk-ui` in its own process group, restartable."""

    def __init__(self, folder: Path, hub_url: str, token: str) -> None:
        from posko.enroll import write_token

        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update({
            "POSKO_CONFIG": str(folder / "posko.toml"),
            "POSKO_POSKO_STATE_DIR": str(folder / "var"),
            "POSKO_KIOSK_PORT": str(self.port), "POSKO_KIOSK_HUB_URL": hub_url,
            "POSKO_KIOSK_SYNC_INTERVAL_S": "0.2", "POSKO_KIOSK_SYNC_PROBE_S": "0.3",
            "POSKO_KIOSK_SYNC_BACKOFF_BASE_S": "0.2", "POSKO_KIOSK_SYNC_BACKOFF_CAP_S": "1",
            "POSKO_KIOSK_HTTP_TIMEOUT_S": "3", "POSKO_KIOSK_THREADS": "4",
            "POSKO_MQTT_PORT": str(free_port()),  # no broker: the kiosk must not care
            "POSKO_POSKO_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
        })
        self.settings = make_settings(folder, POSKO_POSKO_STATE_DIR=str(folder / "var"))
        write_token(self.settings, token)
        self.proc: subprocess.Popen | None = None
        self.kills = 0

    def start(self) -> KioskProcess:
        with open(self.folder / "kiosk.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "posko", "kiosk-ui"], env=self.env,
                                         cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.folder / "kiosk.log").read_text()[-2000:])
            try:
                if requests.get(self.url + "/api/status", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("kiosk did not start")

    def kill(self) -> None:
        """SIGKILL the whole process group (gunicorn master and worker)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            self.kills += 1
        deadline = time.monotonic() + 5
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    def outbox(self) -> Outbox:
        return Outbox(self.folder / "var" / "kiosk" / "outbox", create=False)


@pytest.fixture
def kiosk_process(tmp_path):
    made: list[KioskProcess] = []

    def make(hub) -> KioskProcess:
        kiosk = KioskProcess(tmp_path / f"kiosk{len(made)}", hub.url, hub.token)
        kiosk.folder.mkdir(parents=True, exist_ok=True)
        made.append(kiosk)
        return kiosk.start()

    yield make
    for kiosk in made:
        kiosk.kill()


def submit(kiosk: KioskProcess, description: str, photo: bytes | None, timeout: float = 15):
    form = {"category": "pencurian", "description": description, "where": "here", "when_offset_min": "0"}
    files = {"photo": ("p.png", photo, "image/png")} if photo else None
    return requests.post(kiosk.url + "/api/lapor", data=form, files=files, timeout=timeout)


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def assert_exactly_once(hub_state: dict, shown: dict[str, str], attempted: set[str]) -> None:
    """shown: ticket -> description. Every shown ticket once; nothing not attempted."""
    reports = hub_state["reports"]
    tickets = [r["ticket"] for r in reports]
    assert len(tickets) == len(set(tickets)), "a ticket arrived twice"
    ids = [r["id"] for r in reports]
    assert len(ids) == len(set(ids))
    by_ticket = {r["ticket"]: r for r in reports}
    for ticket, description in shown.items():
        assert ticket in by_ticket, f"shown ticket {ticket} never reached the hub"
        assert by_ticket[ticket]["description"] == description
    descriptions = [r["description"] for r in reports]
    assert len(descriptions) == len(set(descriptions)), "one submission arrived as two reports"
    assert set(descriptions) <= attempted, "the hub holds a report nobody submitted"
    for r in reports:  # every photo a report names is at the hub
        assert all(p in hub_state["photos"] for p in r["photos"])
    assert hub_state["quarantine"] == []  # nothing the hub refused


def test_hub_down_during_20_submissions_then_up_every_report_arrives_once(hub_process, kiosk_process) -> None:
    hub = hub_process()
    hub.stop()
    kiosk = kiosk_process(hub)
    shown: dict[str, str] = {}
    for i in range(20):
        description = f"laporan saat hub mati nomor {i}"
        response = submit(kiosk, description, small_png(i) if i % 4 == 0 else None)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["online"] is False
        shown[data["ticket"].replace("-", "")] = description
    assert kiosk.outbox().stats()["pending"] == 20
    assert requests.get(kiosk.url + "/api/status", timeout=5).json()["online"] is False
    hub.start()
    wait_for(lambda: len(hub.state()["reports"]) >= 20 and kiosk.outbox().stats()["pending"] == 0,
             60, "all 20 reports at the hub")
    time.sleep(1.0)  # a late duplicate would show up here
    state = hub.state()
    assert len(state["reports"]) == 20
    assert_exactly_once(state, shown, set(shown.values()))
    stats = kiosk.outbox().stats()
    assert (stats["pending"], stats["oldest_pending_s"], stats["parked"]) == (0, 0.0, 0)


def test_sigkill_at_random_points_during_50_submit_sync_cycles(hub_process, kiosk_process) -> None:
    hub = hub_process()
    kiosk = kiosk_process(hub)
    rng = random.Random(20261224)
    shown: dict[str, str] = {}
    attempted: set[str] = set()
    for i in range(50):
        description = f"laporan nomor {i}"
        photo = small_png(100 + i) if i % 3 == 0 else None
        killer = None
        if rng.random() < 0.3:  # kill somewhere during this submission or the sync after it
            killer = threading.Timer(rng.uniform(0.0, 0.25), kiosk.kill)
            killer.start()
        attempted.add(description)
        try:
            response = submit(kiosk, description, photo)
            if response.status_code == 200:
                shown[response.json()["ticket"].replace("-", "")] = description
            else:
                raise AssertionError(response.text)
        except requests.RequestException:
            pass  # no ticket shown: the resident would ask again (a new report)
        if killer:
            killer.join()
        if not kiosk.alive():
            kiosk.start()
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0.0, 0.4))  # let the sync worker be mid-request sometimes
    assert kiosk.kills >= 8, "the test should really have killed the kiosk several times"
    assert len(shown) >= 35
    if not kiosk.alive():
        kiosk.start()
    wait_for(lambda: kiosk.outbox().stats()["pending"] == 0, 90, "the outbox to drain")
    time.sleep(1.0)
    state = hub.state()
    assert_exactly_once(state, shown, attempted)
    assert kiosk.outbox().stats()["parked"] == 0
