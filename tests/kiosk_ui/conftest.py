"""Kiosk fixtures: settings in a temp state dir, and the kiosk app served on a real port."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from posko.config import Settings, load_settings


def make_settings(tmp: Path, **env: str) -> Settings:
    """Settings read the normal way (file + POSKO_* variables) from a temp folder."""
    tmp.mkdir(parents=True, exist_ok=True)
    conf = tmp / "posko.toml"
    if not conf.exists():
        conf.write_text("")
    environ = {"POSKO_POSKO_STATE_DIR": str(tmp / "var"),
               "POSKO_KIOSK_HUB_URL": "http://127.0.0.1:9"}  # nothing listens on port 9
    environ.update(env)
    return load_settings(conf, environ)


class ServedApp:
    """A kiosk app on a real HTTP port, in a thread of the test process."""

    def __init__(self, app) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def kiosk(self):
        return self.app.extensions["kiosk"]

    def stop(self) -> None:
        self.server.shutdown()
        self.kiosk.stop()


@pytest.fixture
def serve_kiosk(tmp_path: Path) -> Iterator[Callable[..., ServedApp]]:
    """serve_kiosk(env={...}, **test_config) -> a running kiosk app; all stop after the test."""
    from kiosk_ui.app import create_app

    served: list[ServedApp] = []

    def make(env: dict[str, str] | None = None, folder: Path | None = None, **config) -> ServedApp:
        settings = make_settings(folder or tmp_path / f"kiosk{len(served)}", **(env or {}))
        config.setdefault("START_BRAIN", False)
        config.setdefault("START_ALERTS", True)  # alerts are retried as on a real kiosk
        app = create_app({"SETTINGS": settings, **config})
        running = ServedApp(app)
        served.append(running)
        return running

    yield make
    for running in served:
        running.stop()


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB tmpfs, so 'disk full' is a real ENOSPC from the kernel (needs root)."""
    import subprocess

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}); "
                    "test_outbox.py::test_enospc_at_the_write_edge covers disk-full by patching")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill_disk(folder: Path) -> Path:
    """Write a filler file until the filesystem is full; returns it (delete it to free space)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


class RealHub:
    """The real hub (`posko hub serve`, gunicorn, SQLite) with one enrolled unit.

    `url`, `port`, `token`, `unit`; `start()`, `stop()` (SIGKILL), `state()` (what its
    database holds), `add_unit()` (another enrolled unit), `block_phone()`.
    """

    kind = "real hub"

    def __init__(self, folder: Path, unit: str = "kiosk-test-1") -> None:
        from posko.broker import free_port

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "posko.toml").write_text("")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.unit = unit
        self.token = ""
        self.proc = None
        self._sessions = None
        self.env = dict(os.environ)
        self.env.update({"POSKO_CONFIG": str(folder / "posko.toml"),
                         "POSKO_POSKO_STATE_DIR": str(folder / "var"),
                         "POSKO_HUB_PORT": str(self.port), "POSKO_HUB_WORKERS": "1",
                         "POSKO_HUB_THREADS": "8", "POSKO_HUB_MQTT_INGEST": "false",
                         "POSKO_POSKO_LOG_LEVEL": "WARNING"})

    @property
    def db_path(self) -> Path:
        return self.folder / "var" / "hub" / "hub.db"

    def start(self) -> RealHub:
        import subprocess
        import time

        import requests

        from posko.procs import python_module_argv  # as the product spawns: cwd not on sys.path

        with open(self.folder / "hub.log", "ab") as log:
            self.proc = subprocess.Popen(python_module_argv("hub", "serve"), env=self.env,
                                         cwd=self.folder, stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.folder / "hub.log").read_text()[-2000:])
            try:
                requests.get(self.url + "/api/v1/ping", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("hub did not start")
        if not self.token:
            self.token = self.add_unit(self.unit)
        return self

    def sessions(self):
        if self._sessions is None:
            from hub.db import Sessions, make_engine

            self._sessions = Sessions(make_engine(f"sqlite:///{self.db_path}"))
        return self._sessions

    def add_unit(self, unit_id: str) -> str:
        """Add and enrol a unit (as an admin and the unit would); returns its token."""

        from hub.units import add_unit

        with self.sessions().writer() as db:
            code = add_unit(db, unit_id, f"Posko {unit_id}", 24)
        return self.enrol(unit_id, code)

    def new_code(self, unit_id: str) -> str:
        from hub.units import rotate

        with self.sessions().writer() as db:
            return rotate(db, unit_id, 24)

    def enrol(self, unit_id: str, code: str) -> str:
        import requests

        answer = requests.post(self.url + "/api/v1/enroll", json={"unit": unit_id, "code": code}, timeout=10)
        answer.raise_for_status()
        return answer.json()["token"]

    def block_phone(self, phone: str) -> None:
        """Block a number as the dashboard does after a prank report."""
        from hub import secrets_store
        from hub.models import PhoneBlock, utcnow
        from posko.tickets import normalise_phone, phone_key

        number = normalise_phone(phone)
        with self.sessions().writer() as db:
            key = phone_key(number, secrets_store.hub_secret(db, secrets_store.PHONE_KEY))
            db.add(PhoneBlock(phone_key=key, phone=number, reason="laporan palsu", created_at=utcnow()))
            db.commit()

    def set_state(self, report_id: str, state: str, note: str = "") -> None:
        """An officer's workflow step, straight in the database (the dashboard is tested apart)."""
        from hub.models import Report, utcnow

        with self.sessions().writer() as db:
            report = db.get(Report, report_id)
            report.state, report.public_note, report.updated_at = state, note, utcnow()
            db.commit()

    def stop(self) -> None:
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def close(self) -> None:
        self.stop()
        if self._sessions is not None:
            self._sessions.engine.dispose()

    def state(self, unit: str | None = None) -> dict:
        """What the hub holds (of one unit, if given), read from its SQLite database."""
        import json
        import sqlite3

        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            where, args = ("WHERE unit_id = ?", (unit,)) if unit else ("", ())
            reports = [{"id": r[0], "ticket": r[1], "description": r[2], "photos": json.loads(r[3] or "[]"),
                        "unit": r[4], "time_suspect": bool(r[5]), "phone_blocked": bool(r[6]),
                        "occurred_at": r[7], "received_at": r[8], "body_hash": r[9]}
                       for r in db.execute("SELECT id, ticket, description, photos, unit_id, time_suspect, "
                                           f"phone_blocked, occurred_at, received_at, body_hash FROM reports {where}",
                                           args)]
            names = {p for r in reports for p in r["photos"]}
            photos = {r[0]: r[1] for r in db.execute("SELECT sha256, size FROM photos") if not unit or r[0] in names}
            quarantine = [{"unit": r[0], "report_id": r[1], "body": r[2], "errors": json.loads(r[3]), "count": r[4]}
                          for r in db.execute(f"SELECT unit_id, report_id, body, errors, count FROM quarantine {where}",
                                              args)]
            units = {r[0]: {"duplicate_count": r[1], "duplicate_seen_at": r[2]}
                     for r in db.execute("SELECT id, duplicate_count, duplicate_seen_at FROM units")}
        finally:
            db.close()
        return {"reports": reports, "photos": photos, "quarantine": quarantine, "units": units}


@dataclass
class HubUnit:
    """One enrolled unit of a shared running hub: what a test's kiosk talks to."""

    hub: RealHub
    unit: str
    token: str

    @property
    def url(self) -> str:
        return self.hub.url

    @property
    def port(self) -> int:
        return self.hub.port

    def state(self) -> dict:
        return self.hub.state(self.unit)


@pytest.fixture(scope="session")
def shared_hub(tmp_path_factory) -> Iterator[RealHub]:
    """One real hub for the tests that do not stop it (each gets its own unit: hub_unit)."""
    hub = RealHub(tmp_path_factory.mktemp("shared-hub")).start()
    try:
        yield hub
    finally:
        hub.close()


@pytest.fixture
def hub_unit(shared_hub: RealHub) -> HubUnit:
    """A fresh enrolled unit on the shared real hub; state() shows only its reports."""
    import uuid

    unit = f"kiosk-{uuid.uuid4().hex[:8]}"
    return HubUnit(shared_hub, unit, shared_hub.add_unit(unit))


@pytest.fixture
def hub_process(tmp_path: Path) -> Iterator[Callable[..., RealHub]]:
    """A real hub of the test's own (for tests that stop and start it): `hub_process(unit=...,
    start=False)` for one whose uplink is down at first. Every one is stopped after the test."""
    hubs: list[RealHub] = []

    def make(unit: str = "kiosk-test-1", start: bool = True) -> RealHub:
        hub = RealHub(tmp_path / f"realhub{len(hubs)}", unit=unit)
        hubs.append(hub)
        return hub.start() if start else hub

    yield make
    for hub in hubs:
        hub.close()
