"""The hub under slow clients, open live streams and decoding bombs (issue 16, items 1-2),
against a real `posko hub serve` on loopback, bounded in time.

Without a reverse proxy in front: 500 connections sending their headers slowly and 50
open live streams, while intake keeps answering in under a second; photos that fit the
pixel limit but decode to hundreds of megabytes, several at once, with the workers' peak
memory (VmHWM) read from /proc.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import os
import socket
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.hub.support import HubProcess, Officer, report_body

pytestmark = [pytest.mark.broker, pytest.mark.timeout(240)]


@pytest.fixture
def lone_hub(broker, tmp_path):
    """A hub of its own (2 workers, SQLite), so its workers' memory is this test's alone."""
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "state",
                     mqtt_port=broker.port, topic_root=f"test/{uuid.uuid4().hex[:8]}/posko/v1",
                     extra_env={"POSKO_HUB_MQTT_INGEST": "false"})
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def _request_line(hub: HubProcess, path: str, cookie: str = "") -> bytes:
    # The login's User-Agent: Flask-Login's strong session protection checks it.
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{hub.port}",
             f"User-Agent: {requests.utils.default_user_agent()}"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n").encode()


class SlowClients:
    """n connections that send a request line, then one header byte every few seconds."""

    def __init__(self, hub: HubProcess, n: int) -> None:
        self.socks: list[socket.socket] = []
        for i in range(n):
            sock = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
            sock.sendall(_request_line(hub, f"/masuk?slow={i}") + b"X-Slow: ")
            self.socks.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        while not self._stop.wait(2.0):
            for sock in self.socks:
                try:
                    sock.send(b"a")
                except OSError:
                    pass

    def outcomes(self) -> Counter:
        """What each connection shows now: 'open' (no answer yet), 'answered' or 'closed'."""
        seen: Counter = Counter()
        for sock in self.socks:
            sock.setblocking(False)
            try:
                seen["answered" if sock.recv(1) else "closed"] += 1
            except BlockingIOError:
                seen["open"] += 1
            except OSError as exc:
                seen[type(exc).__name__] += 1
        return seen

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()


def open_stream(hub: HubProcess, path: str, cookie: str) -> socket.socket:
    """An SSE stream whose response headers have arrived (200, text/event-stream)."""
    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=20)
    sock.sendall(_request_line(hub, path, cookie) + b"Accept: text/event-stream\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"{path}: closed before answering"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head, head[:200]
    return sock


def test_slow_clients_and_open_streams_do_not_stop_intake(lone_hub):
    hub = lone_hub
    _unit, token = hub.add_unit()
    officer = Officer(hub, *hub.add_user("operator"))
    cookie = "; ".join(f"{c.name}={c.value}" for c in officer.http.cookies)
    slow = SlowClients(hub, 500)
    streams = []
    try:
        with concurrent.futures.ThreadPoolExecutor(25) as pool:
            paths = ["/live/stream", "/grup-bicara/stream"] * 25
            streams = list(pool.map(lambda p: open_stream(hub, p, cookie), paths))
        time.sleep(1.0)
        took = []
        for _ in range(8):
            started = time.monotonic()
            response = requests.post(f"{hub.base}/api/v1/reports", json=report_body(), timeout=10,
                                     headers={"Authorization": f"Bearer {token}"})
            took.append(time.monotonic() - started)
            assert response.status_code == 201, response.text
        assert max(took) < 1.0, f"intake answered in {took}"
        held = slow.outcomes()
        assert held == Counter(open=500), f"{held}; hub log: {hub.log_text()[-3000:]}"
        for sock in streams:  # every stream is still open and sending
            sock.settimeout(20)
            assert sock.recv(1), "a live stream closed"
    finally:
        slow.close()
        for sock in streams:
            sock.close()


# --- item 2: decoding bombs -----------------------------------------------------------

def _workers(hub: HubProcess) -> list[int]:
    """PIDs of the gunicorn workers (children of `posko hub serve`)."""
    children = Path(f"/proc/{hub.proc.pid}/task/{hub.proc.pid}/children").read_text().split()
    return [int(pid) for pid in children
            if b"ingest" not in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _png_bomb(seed: int) -> bytes:
    """The field case: a PNG of ~150 KB that decodes to 6300 x 6300 pixels."""
    img = Image.new("RGBA", (6300, 6300), (20, 90, 160, 255))
    img.putpixel((seed % 6300, seed // 6300 % 6300), (seed % 256, 1, 2, 255))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=9)
    return out.getvalue()


def _jpeg_40mp(progressive: bool) -> bytes:
    img = Image.linear_gradient("L").resize((7700, 5190)).convert("RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80, progressive=progressive)
    return out.getvalue()


def test_photo_bombs_keep_a_worker_under_400_mb(lone_hub):
    hub = lone_hub
    _unit, token = hub.add_unit()
    photos = [_png_bomb(i) for i in range(4)] + [_jpeg_40mp(False), _jpeg_40mp(True)]
    assert len(photos[0]) < 400_000  # small on the wire …
    before = {pid: _peak_rss_mb(pid) for pid in _workers(hub)}
    assert len(before) == 2

    def put(data: bytes) -> requests.Response:
        sha = hashlib.sha256(data).hexdigest()
        return requests.put(f"{hub.base}/api/v1/photos/{sha}", data=data, timeout=120,
                            headers={"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/octet-stream"})

    with concurrent.futures.ThreadPoolExecutor(len(photos)) as pool:
        answers = list(pool.map(put, photos))
    assert [a.status_code for a in answers] == [201] * len(photos), [a.text for a in answers]
    for answer in answers:  # … and stored reduced, not at 40 MP
        assert max(answer.json()["width"], answer.json()["height"]) <= 2560
    peaks = {pid: _peak_rss_mb(pid) for pid in before}
    print(f"worker peak RSS (MB) {peaks}, before {before}")
    assert max(peaks.values()) < 400, f"worker peak RSS (MB) {peaks}, before {before}"
    assert os.path.exists(f"/proc/{hub.proc.pid}")
