"""A running hub process for tests, and an HTTP client that logs in like an officer."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

from posko.broker import free_port, wait_for_port
from posko.procs import python_module_argv  # as the product spawns: cwd not on sys.path
from posko.tickets import new_pin, new_ticket

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_") or k.startswith("POSKO_TEST_")}
    env.update(extra)
    return env


@dataclass
class HubProcess:
    """`posko hub serve` started by the test session on a free port."""

    db_url: str
    state_dir: Path
    mqtt_port: int
    topic_root: str
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return clean_env(
            POSKO_POSKO_STATE_DIR=str(self.state_dir), POSKO_HUB_DATABASE_URL=self.db_url,
            POSKO_HUB_PORT=str(self.port), POSKO_MQTT_PORT=str(self.mqtt_port),
            POSKO_MQTT_TOPIC_ROOT=self.topic_root, POSKO_HUB_WORKERS="2",
            POSKO_POSKO_LOG_LEVEL="WARNING", **self.extra_env)

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(python_module_argv(*args), env=self.env(), cwd=self.state_dir,
                                input=stdin, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"posko {' '.join(args)} failed: {result.stderr}")
        return result

    def start(self) -> HubProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.cli("hub", "migrate")
        self.log = open(self.state_dir / "hub.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(python_module_argv("hub", "serve", "--no-migrate"),
                                     env=self.env(), cwd=self.state_dir, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout_s=30, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()
        if getattr(self, "_sessions", None) is not None:
            self._sessions.engine.dispose()

    def log_text(self) -> str:
        return (self.state_dir / "hub.log").read_text(errors="replace")

    # helpers (straight to the hub's database: the CLI itself is tested on its own, and a
    # `posko` subprocess per test would cost seconds each)
    def db(self):
        if getattr(self, "_sessions", None) is None:
            from hub.db import Sessions, make_engine

            self._sessions = Sessions(make_engine(self.db_url))
        return self._sessions.writer()

    def add_unit(self, name: str = "") -> tuple[str, str]:
        """A new enrolled unit: (unit_id, token), with a one-time code and POST /api/v1/enroll."""
        from hub.units import add_unit

        unit_id = f"kiosk-{uuid.uuid4().hex[:8]}"
        with self.db() as db:
            code = add_unit(db, unit_id, name or f"Posko {unit_id}", 24)
        response = requests.post(f"{self.base}/api/v1/enroll", json={"unit": unit_id, "code": code}, timeout=10)
        assert response.status_code == 200, response.text
        return unit_id, response.json()["token"]

    def add_user(self, role: str) -> tuple[str, str]:
        from hub.auth import create_user

        username = f"{role}-{uuid.uuid4().hex[:6]}"
        password = f"pw-{uuid.uuid4().hex}"
        with self.db() as db:
            create_user(db, username, password, role, f"Bripka {username}")
        return username, password


def report_body(**overrides) -> dict:
    body = {
        "id": str(uuid.uuid4()), "category": "pencurian",
        "description": "motor beat hitam plat G 1234 XY hilang di parkiran pasar",
        "occurred_at": dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).replace(microsecond=0).isoformat(),
        "location": {"text": "Posko Alun-alun", "lat": -6.9, "lon": 109.73},
        "reporter": {"name": "Ibu Sari", "phone": "0812-3456-789"},
        "photos": [], "ticket": new_ticket(), "pin": new_pin(),
    }
    body.update(overrides)
    return body


class Officer:
    """An officer's browser-less session: logs in and posts forms with the CSRF token."""

    def __init__(self, hub: HubProcess, username: str, password: str) -> None:
        self.hub = hub
        self.http = requests.Session()
        page = self.http.get(f"{hub.base}/masuk", timeout=10)
        response = self.http.post(f"{hub.base}/masuk", data={
            "csrf_token": self._token(page.text), "username": username, "password": password},
            timeout=10, allow_redirects=False)
        assert response.status_code == 302, f"login failed: {response.status_code}"

    @staticmethod
    def _token(html: str) -> str:
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
            re.search(r'name="csrf-token" content="([^"]+)"', html)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.hub.base + path, timeout=10, **kw)

    def post(self, path: str, data: dict | None = None, page: str | None = None, **kw) -> requests.Response:
        html = self.get(page or "/laporan").text
        form = dict(data or {})
        form["csrf_token"] = self._token(html)
        return self.http.post(self.hub.base + path, data=form, timeout=10, **kw)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
