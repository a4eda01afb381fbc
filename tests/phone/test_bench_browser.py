"""bench/ptt.py --browser: the link proxy shapes a link as promised, and the browser path runs
and hears audio both ways (its timings are the bench's business, not asserted here)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from ptt_proxy import LinkProxy, LinkShape  # noqa: E402


@pytest.fixture
def echo_server():
    """A TCP server that sends back every chunk it reads."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return

            def echo(c=conn) -> None:
                with c:
                    while data := c.recv(65536):
                        c.sendall(data)

            threading.Thread(target=echo, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()
    finally:
        server.close()


def _round_trips(port: int, count: int, gap_s: float) -> tuple[list[float], bytes]:
    """Send `count` numbered 4-byte chunks `gap_s` apart; each chunk's round trip (s), and
    everything that came back."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent: list[float] = []
    back = bytearray()
    arrivals: dict[int, float] = {}

    def read() -> None:
        while len(back) < 4 * count:
            data = sock.recv(65536)
            if not data:
                return
            back.extend(data)
            for i in range(len(back) // 4):
                arrivals.setdefault(i, time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    for i in range(count):
        sent.append(time.monotonic())
        sock.sendall(i.to_bytes(4, "big"))
        time.sleep(gap_s)
    reader.join(10)
    sock.close()
    return [arrivals[i] - sent[i] for i in range(count) if i in arrivals], bytes(back)


def test_proxy_delays_both_ways_and_keeps_order(echo_server) -> None:
    proxy = LinkProxy(echo_server, LinkShape(delay_ms=40, jitter_ms=30, loss=0.0)).start()
    try:
        trips, back = _round_trips(proxy.port, 60, 0.005)
    finally:
        proxy.stop()
    # In order and whole, although each chunk's own delay varies more than the gap between them.
    assert back == b"".join(i.to_bytes(4, "big") for i in range(60))
    assert min(trips) >= 0.020 and sorted(trips)[len(trips) // 2] >= 0.060, trips  # 2 × (40 ± 30) ms
    assert max(trips) < 0.5, trips
    assert proxy.summary()["up"]["lost"] == 0


def test_proxy_loss_holds_the_stream_for_a_retransmission(echo_server) -> None:
    # Every chunk up is lost once: each waits rto + a second crossing, and the ones behind wait too.
    proxy = LinkProxy(echo_server, LinkShape(delay_ms=10, jitter_ms=0, loss=1.0, rto_ms=150),
                      LinkShape(delay_ms=10, jitter_ms=0, loss=0.0)).start()
    try:
        trips, back = _round_trips(proxy.port, 5, 0.02)
    finally:
        proxy.stop()
    assert back == b"".join(i.to_bytes(4, "big") for i in range(5))
    assert all(0.165 <= t < 0.4 for t in trips), trips  # 150 + 10 up, 10 down
    assert proxy.summary()["up"]["lost"] == 5 and proxy.summary()["down"]["lost"] == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_browser_bench_runs_and_hears_audio_both_ways() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "ptt.py"), "--browser", "--quick",
                          "--phone-spurts", "1", "--late", "1", "--phones", "2"],
                         capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["bench"] == "ptt-browser" and isinstance(summary["goals_met"], bool)
    assert [c["condition"] for c in summary["conditions"]] == ["clean", "mobile"]
    for c in summary["conditions"]:
        for key in ("grant_ms_p50", "grant_ms_p95", "m2e_phone_to_unit_ms_p50", "m2e_phone_to_unit_ms_p95",
                    "m2e_unit_to_phone_ms_p50", "m2e_unit_to_phone_ms_p95", "late_entry_ms_p95",
                    "return_entry_ms_p95", "return_entry_from_reconnect_ms_p95"):
            assert isinstance(c[key], float), (c["condition"], key, c[key])
        assert set(c["goals"]) == ({"grant_ms_p95", "m2e_ms_p95"} if c["condition"] == "clean"
                                   else {"m2e_ms_p95", "late_entry_ms_p95", "return_entry_ms_p95"})
        # The phone that came back found its session; the go-ahead's start was seen rendered.
        assert c["return_sessions_found"] == c["return_entries"] == 1, c
        assert c["goahead_rendered"] == 1, c
        # The second phone only listened, and heard the unit and phone 1.
        assert c["phones"] == 2 and [o["phone"] for o in c["other_phones"]] == [2], c
        other = c["other_phones"][0]
        assert other["frames_from_unit"] >= 0.9 * c["frames_unit_sent"] > 0, other
        assert other["frames_from_phone_1"] >= 0.8 * c["frames_phone_sent"] > 0, other
        assert isinstance(other["m2e_unit_to_phone_ms_p95"], float), other
        assert isinstance(other["m2e_phone_to_phone_ms_p95"], float), other
        assert c["granted"] == c["presses"] == 1, c
        # Audio really arrived: the unit heard the phone's speech and the phone the unit's
        # (cross-correlation with what was said), and nearly every frame matched its capture.
        assert c["audio"]["phone_to_unit_correlation"] > 0.5, c["audio"]
        assert c["audio"]["unit_to_phone_correlation"] > 0.5, c["audio"]
        assert c["frames_matched_p2u"] >= 0.8 * c["frames_phone_sent"] > 0, c
        assert c["frames_matched_u2p"] >= 0.9 * c["frames_unit_sent"] > 0, c
        assert c["late_entries"] == 1
        # causality within the clocks' measured uncertainty (-0.14 ms was seen at ±4.25 ms)
        clock = c["clock"]
        assert clock["uncertainty_ms"] < 50 and clock["capture_to_arrival_min_ms"] > -clock["uncertainty_ms"], clock
    mobile = summary["conditions"][1]
    assert mobile["proxy"]["connections"] >= 2 and mobile["proxy"]["down"]["chunks"] > 50, mobile["proxy"]
