"""Kiosk fixtures: settings in a temp state dir, and the kiosk app served on a real port."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
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


class IntakeHub:
    """The minimal intake server (tests/kiosk_ui/intake_server.py) as a separate process."""

    def __init__(self, folder: Path, token: str = "unit-token-1", block: tuple[str, ...] = ()) -> None:
        from posko.broker import free_port

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.block = block
        self.proc = None

    def start(self) -> IntakeHub:
        import subprocess
        import sys
        import time

        import requests

        argv = [sys.executable, "-m", "tests.kiosk_ui.intake_server", "--port", str(self.port),
                "--db", str(self.folder / "intake.db"), "--token", self.token]
        for phone in self.block:
            argv += ["--block", phone]
        with open(self.folder / "log", "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=Path(__file__).resolve().parents[2],
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/api/v1/openapi.json", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("intake server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def state(self) -> dict:
        import requests

        return requests.get(self.url + "/_test/state", timeout=5).json()


@pytest.fixture
def intake_hub(tmp_path: Path) -> Iterator[Callable[..., IntakeHub]]:
    hubs: list[IntakeHub] = []

    def make(**kwargs) -> IntakeHub:
        hub = IntakeHub(tmp_path / f"hub{len(hubs)}", **kwargs).start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()


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

    Same surface as IntakeHub: url, port, token, start(), stop(), state().
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
        self.env = dict(os.environ)
        self.env.update({"POSKO_CONFIG": str(folder / "posko.toml"),
                         "POSKO_POSKO_STATE_DIR": str(folder / "var"),
                         "POSKO_HUB_PORT": str(self.port), "POSKO_HUB_WORKERS": "1",
                         "POSKO_HUB_THREADS": "8", "POSKO_HUB_MQTT_INGEST": "false",
                         "POSKO_POSKO_LOG_LEVEL": "WARNING"})

    def _posko(self, *args: str) -> str:
        import subprocess
        import sys

        done = subprocess.run([sys.executable, "-m", "posko", *args], env=self.env,
                              capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parents[2])
        if done.returncode != 0:
            raise RuntimeError(f"posko {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def start(self) -> RealHub:
        import subprocess
        import sys
        import time

        import requests

        with open(self.folder / "hub.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "posko", "hub", "serve"], env=self.env,
                                         cwd=Path(__file__).resolve().parents[2], stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.folder / "hub.log").read_text()[-2000:])
            try:
                requests.get(self.url + "/api/v1/openapi.json", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("hub did not start")
        if not self.token:
            code = self._posko("hub", "units", "add", self.unit).strip().splitlines()[-1]
            answer = requests.post(self.url + "/api/v1/enroll", json={"unit": self.unit, "code": code},
                                   timeout=10)
            answer.raise_for_status()
            self.token = answer.json()["token"]
        return self

    def stop(self) -> None:
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def state(self) -> dict:
        """What the hub holds, read from its SQLite database."""
        import json
        import sqlite3

        db = sqlite3.connect(f"file:{self.folder / 'var' / 'hub' / 'hub.db'}?mode=ro", uri=True, timeout=10)
        try:
            reports = [{"id": r[0], "ticket": r[1], "description": r[2], "photos": json.loads(r[3] or "[]")}
                       for r in db.execute("SELECT id, ticket, description, photos FROM reports")]
            photos = {r[0]: r[1] for r in db.execute("SELECT sha256, size FROM photos")}
        finally:
            db.close()
        return {"reports": reports, "photos": photos, "posts": []}


def real_hub_built() -> bool:
    import importlib.util

    return importlib.util.find_spec("hub.cli") is not None


@pytest.fixture
def hub_process(tmp_path: Path, intake_hub) -> Iterator[Callable[[], object]]:
    """The real hub when this build has it, else the minimal intake server (said in the test id)."""
    hubs: list[RealHub] = []

    def make():
        if not real_hub_built():
            return intake_hub()
        hub = RealHub(tmp_path / f"realhub{len(hubs)}").start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()
