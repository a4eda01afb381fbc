"""sd_notify and the watchdog: pings go out only while the service is well.

systemd itself restarts a service whose pings stop (WatchdogSec=); here a real unix datagram
socket stands in for systemd's NOTIFY_SOCKET, and the services are real processes: a hung
one (SIGSTOP) stops pinging, and pings resume when it runs again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from posko.broker import free_port
from posko.service import Notifier, Watchdog, watchdog_interval_s

ROOT = Path(__file__).resolve().parents[2]
POSKO = Path(sys.executable).with_name("posko")


class FakeSystemd:
    """A NOTIFY_SOCKET that records what a service sends."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []

    def drain(self, seconds: float) -> list[str]:
        """Collect messages for this long; returns those that came in meanwhile."""
        got = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data))
            got.append(data)
        return got

    def wait_for(self, text: str, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if any(text in m for m in self.drain(0.2)):
                return
        raise AssertionError(f"no {text!r} within {timeout_s} s; got {self.messages[-5:]}")

    def env(self, watchdog_s: float) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
        env.update(NOTIFY_SOCKET=str(self.path), WATCHDOG_USEC=str(int(watchdog_s * 1e6)))
        return env


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(tmp_path)
    yield fake
    fake.sock.close()


def test_interval_is_a_third_of_watchdogsec_and_only_for_the_named_pid() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == pytest.approx(10.0)
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None


def test_notifier_reaches_an_abstract_socket_like_systemds() -> None:
    name = f"posko-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).notify("READY=1")
        assert server.recv(100) == b"READY=1"
    finally:
        server.close()
    assert not Notifier({}).notify("READY=1")  # no systemd: nothing, no error


def test_a_main_loop_that_stops_beating_stops_the_pings(systemd: FakeSystemd) -> None:
    dog = Watchdog(interval_s=0.1, notifier=Notifier({"NOTIFY_SOCKET": str(systemd.path)})).start()
    try:
        for _ in range(8):
            dog.beat()
            time.sleep(0.05)
        assert sum("WATCHDOG=1" in m for m in systemd.drain(0.3)) >= 2
        time.sleep(0.3)  # the loop hangs: no beat for more than two intervals
        assert not [m for m in systemd.drain(0.5) if "WATCHDOG=1" in m]
        dog.beat()
        assert any("WATCHDOG=1" in m for m in systemd.drain(0.4))
    finally:
        dog.stop()


def test_posko_watch_pings_while_the_child_answers_and_stops_when_it_hangs(
        systemd: FakeSystemd, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(POSKO), "watch", "--http", f"http://127.0.0.1:{port}/", "--timeout", "0.5", "--",
         sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port), "-d", str(tmp_path)],
        env=systemd.env(watchdog_s=1.5), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        systemd.wait_for("READY=1", 20)
        pings = [m for m in systemd.drain(2.0) if m == "WATCHDOG=1"]
        assert len(pings) >= 3
        child = int(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                   text=True).stdout.split()[0])
        os.kill(child, signal.SIGSTOP)  # hung: the port still accepts, nothing answers
        systemd.drain(1.2)  # a check that was under way may still finish
        assert [m for m in systemd.drain(2.0) if m == "WATCHDOG=1"] == []
        os.kill(child, signal.SIGCONT)
        assert "WATCHDOG=1" in systemd.drain(2.5)
        proc.send_signal(signal.SIGTERM)  # passed on: the child ends, then posko watch
        assert proc.wait(10) in (143, 0, -15, 1)
        assert "STOPPING=1" in systemd.drain(0.3) + [m for _, m in systemd.messages]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_posko_watch_exits_with_the_child_so_systemd_restarts_it(systemd: FakeSystemd) -> None:
    result = subprocess.run([str(POSKO), "watch", "--http", "http://127.0.0.1:9/", "--",
                             sys.executable, "-c", "import sys; sys.exit(3)"],
                            env=systemd.env(3), capture_output=True, timeout=30)
    assert result.returncode == 3
    assert not any("READY=1" in m for _, m in systemd.messages)  # never healthy, never ready


def test_posko_watch_stops_a_child_never_healthy_after_its_start_timeout(systemd: FakeSystemd) -> None:
    """--start-timeout, or $POSKO_WATCH_START_TIMEOUT (the emulated test machine sets it for
    every unit, as it raises systemd's own start timeout)."""
    env = systemd.env(3) | {"POSKO_WATCH_START_TIMEOUT": "1"}
    started = time.monotonic()
    result = subprocess.run([str(POSKO), "watch", "--http", "http://127.0.0.1:9/", "--",
                             sys.executable, "-c", "import time; time.sleep(60)"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert "not healthy after 1 s" in result.stderr, result.stderr
    assert result.returncode != 0 and time.monotonic() - started < 25
    assert not any("READY=1" in m for _, m in systemd.messages)


@pytest.mark.broker
def test_the_arbiter_says_ready_and_pings_while_its_loop_runs(systemd: FakeSystemd, broker,
                                                              tmp_path: Path) -> None:
    env = systemd.env(watchdog_s=0.9)
    env.update(POSKO_MQTT_HOST="127.0.0.1", POSKO_MQTT_PORT=str(broker.port),
               POSKO_POSKO_STATE_DIR=str(tmp_path / "var"))
    proc = subprocess.Popen([str(POSKO), "arbiter"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        systemd.wait_for("READY=1", 20)
        assert sum(m == "WATCHDOG=1" for m in systemd.drain(1.5)) >= 3
        os.kill(proc.pid, signal.SIGSTOP)
        systemd.drain(0.4)
        assert [m for m in systemd.drain(1.5) if m == "WATCHDOG=1"] == []
        os.kill(proc.pid, signal.SIGCONT)
        # After SIGCONT the loop beats again and the pings come back.
        assert "WATCHDOG=1" in systemd.drain(1.5)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(10)
