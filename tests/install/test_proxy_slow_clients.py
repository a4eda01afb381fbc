"""The hub as deployed (nginx from systemd/nginx/posko-hub.conf in front of `posko hub serve`)
holds 500 slow clients and 50 open live streams while report intake answers in under 1 s.

Everything runs on loopback: nginx with the shipped site file (ports and certificate paths
swapped for the test's), two real hub instances on one database (intake, and the streams
instance nginx sends /live/stream to), slow clients that trickle their request headers over
TLS, and officers' live streams from 50 different loopback addresses (nginx allows 8 per
address). A contrast test sends the same slow clients straight at gunicorn: without the
proxy, intake stops answering (issue: the hub stops answering without a login).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from posko.broker import free_port
from tests.hub.support import HubProcess, report_body
from tests.support.nginx import NGINX, Nginx, make_cert, site_for_test

pytestmark = [pytest.mark.slow]


class SlowClients:
    """n connections that send a request header one byte every `every_s`, reopened when dropped."""

    def __init__(self, port: int, n: int, tls: bool, every_s: float = 1.0) -> None:
        self.port, self.n, self.tls, self.every_s = port, n, tls, every_s
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.socks: list[socket.socket | None] = [None] * n
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.header = b"POST /api/v1/reports HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 10000

    def _open(self) -> socket.socket | None:
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if self.tls:
                s = self.context.wrap_socket(s, server_hostname="localhost")
            s.settimeout(0.001)
            self.opened += 1
            return s
        except OSError:
            return None

    def start(self) -> SlowClients:
        for i in range(self.n):
            self.socks[i] = self._open()
        self._thread.start()
        return self

    def live(self) -> int:
        return sum(s is not None for s in self.socks)

    def _run(self) -> None:
        offset = 0
        while not self._stop.wait(self.every_s):
            for i, s in enumerate(self.socks):
                if self._stop.is_set():
                    return
                try:
                    if s is None:
                        raise OSError
                    s.send(self.header[offset % len(self.header):][:1])
                except (ssl.SSLWantWriteError, TimeoutError, BlockingIOError):
                    pass
                except OSError:  # dropped by the server: a new slow client takes its place
                    if s is not None:
                        s.close()
                    self.socks[i] = self._open()
            offset += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for s in self.socks:
            if s is not None:
                s.close()


def open_stream(port: int, source: str, cookie: str) -> tuple[ssl.SSLSocket, bytes]:
    """GET /live/stream over TLS from a given loopback address; returns the socket, first bytes."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s = context.wrap_socket(raw, server_hostname="localhost")
    # The same browser that logged in (the hub binds a session to its user agent).
    s.sendall(f"GET /live/stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
              f"User-Agent: {requests.utils.default_user_agent()}\r\n"
              f"Cookie: {cookie}\r\n\r\n".encode())
    got = b""
    while b"\r\n\r\n" not in got or (b" 200 " in got.split(b"\r\n")[0] and b"retry:" not in got):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    return s, got


@pytest.fixture
def deployed_hub(tmp_path: Path) -> Iterator[dict]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed (apt-get install nginx; ./setup.sh hub installs it)")
    state = tmp_path / "hub"
    db_url = f"sqlite:///{state / 'hub.db'}"
    common = dict(db_url=db_url, state_dir=state, mqtt_port=free_port(),
                  topic_root=f"test/{uuid.uuid4().hex[:8]}/posko/v1")
    intake = HubProcess(**common, extra_env={"POSKO_HUB_MQTT_INGEST": "false"}).start()
    streams = HubProcess(**common, extra_env={"POSKO_HUB_MQTT_INGEST": "false",
                                              "POSKO_HUB_THREADS": "64"}).start()
    crt, key = make_cert(tmp_path)
    http_port, https_port = free_port(), free_port()
    nginx = Nginx(tmp_path / "nginx", site_for_test(intake.port, streams.port, http_port, https_port,
                                                    crt, key)).start(https_port)
    try:
        yield {"intake": intake, "streams": streams, "https": https_port, "http": http_port,
               "crt": crt, "base": f"https://127.0.0.1:{https_port}"}
    finally:
        nginx.stop()
        streams.stop()
        intake.stop()


class FromAddress(requests.adapters.HTTPAdapter):
    """Connect from a given loopback address (each officer has their own)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        return super().init_poolmanager(*args, **kwargs)


def login_cookie(base: str, crt: Path, username: str, password: str, source: str = "127.0.0.1") -> str:
    """An officer's session cookie; the hub binds a session to the officer's address."""
    http = requests.Session()
    http.mount("https://", FromAddress(source))
    page = http.get(f"{base}/masuk", timeout=10, verify=str(crt))
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    response = http.post(f"{base}/masuk", data={"csrf_token": token, "username": username,
                                                 "password": password},
                         timeout=10, allow_redirects=False, verify=str(crt),
                         # Behind nginx the hub knows it is HTTPS (X-Forwarded-Proto), so
                         # its CSRF check wants the same-origin Referer a browser sends.
                         headers={"Referer": f"{base}/masuk"})
    assert response.status_code == 302, response.status_code
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def timed_report(base: str, crt: Path, token: str) -> float:
    started = time.monotonic()
    response = requests.post(f"{base}/api/v1/reports", json=report_body(), timeout=10, verify=str(crt),
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), response.text
    return time.monotonic() - started


def test_500_slow_clients_and_50_streams_leave_intake_answering_in_under_a_second(deployed_hub) -> None:
    hub, base, crt = deployed_hub["intake"], deployed_hub["base"], deployed_hub["crt"]
    _unit, token = hub.add_unit()
    username, password = hub.add_user("operator")
    headers = requests.get(f"{base}/masuk", verify=str(crt), timeout=10).headers
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    redirect = requests.get(f"http://127.0.0.1:{deployed_hub['http']}/masuk", allow_redirects=False, timeout=10)
    assert redirect.status_code == 301 and redirect.headers["Location"].startswith("https://")

    streams = []
    slow = SlowClients(deployed_hub["https"], 500, tls=True).start()
    try:
        for i in range(50):  # 50 officers, each from their own address
            source = f"127.0.0.{10 + i}"
            s, first = open_stream(deployed_hub["https"], source,
                                   login_cookie(base, crt, username, password, source))
            assert b" 200 " in first.split(b"\r\n")[0] and b"retry:" in first, first[:200]
            streams.append(s)
        # One officer's ninth tab is refused by nginx, not given a thread.
        cookie = login_cookie(base, crt, username, password, "127.0.1.1")
        extra = [open_stream(deployed_hub["https"], "127.0.1.1", cookie) for _ in range(9)]
        assert [b" 429 " in got.split(b"\r\n")[0] for _, got in extra] == [False] * 8 + [True]
        for s, _ in extra:
            s.close()
        time.sleep(2)  # the slow clients have all sent part of their headers by now
        assert slow.live() >= 450
        times = [timed_report(base, crt, token) for _ in range(10)]
        assert max(times) < 1.0, times
        # The streams still carry live updates: the reports just sent reach them.
        streams[0].settimeout(5)
        seen = b""
        deadline = time.monotonic() + 5
        while b"event: report" not in seen and time.monotonic() < deadline:
            seen += streams[0].recv(65536)
        assert b"event: report" in seen, seen[-300:]
    finally:
        slow.stop()
        for s in streams:
            s.close()


def test_without_the_proxy_gunicorns_gevent_workers_hold_the_same_slow_clients(deployed_hub) -> None:
    """The second line of defence: straight at gunicorn (no nginx), the hub's gevent workers
    spend no thread on a slow client, so intake still answers (gthread workers did not)."""
    hub = deployed_hub["intake"]
    _unit, token = hub.add_unit()
    slow = SlowClients(hub.port, 200, tls=False).start()
    try:
        time.sleep(2)
        started = time.monotonic()
        answer = requests.post(f"{hub.base}/api/v1/reports", json=report_body(), timeout=5,
                               headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 201 and time.monotonic() - started < 1.0
    finally:
        slow.stop()
