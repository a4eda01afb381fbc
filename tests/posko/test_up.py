"""`posko up`: real broker, URLs printed, clean stop, clear one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posko.broker import free_port
from posko.config import load_settings
from tests.support.procs import descendants, read_until, still_running

pytestmark = pytest.mark.broker


def start_up(tmp_path: Path, port: int, *extra: str, env_extra: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({"POSKO_POSKO_STATE_DIR": str(tmp_path / "var"),
                "POSKO_BROKER_PORT": str(port), "POSKO_MQTT_PORT": str(port),
                "PYTHONUNBUFFERED": "1"})
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, "-m", "posko", "up", "--only", "none", *extra],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_up_runs_a_broker_debian_clients_can_use_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    proc = start_up(tmp_path, port)
    try:
        text = read_until(proc, "Press Ctrl-C")
        assert f"mqtt://127.0.0.1:{port}" in text
        assert "broker" in text
        kids = descendants(proc.pid)
        assert kids, "posko up started no processes"
        # Debian's clients with the logins `posko up` keeps in its state dir (no anonymous ones).
        logins = json.loads((tmp_path / "var" / "broker" / "users.json").read_text())
        unit = load_settings(None, environ={}).posko.unit_id
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-u", "watch",
                                "-P", logins["watch"], "-t", f"posko/v1/unit/{unit}/status", "-C", "1", "-W", "10"],
                               stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-u", unit, "-P", logins[unit],
                        "-t", f"posko/v1/unit/{unit}/status", "-m", "halo"], check=True, timeout=10)
        assert sub.communicate(timeout=15)[0].strip() == "halo"

        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=20)[0]
        assert proc.returncode == 0, rest
        assert "stopped." in rest
        time.sleep(0.2)
        alive = still_running(kids)
        assert not alive, f"processes left behind: {alive}"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, "broker still listening"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_up_stops_everything_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = start_up(tmp_path, port)
    try:
        read_until(proc, "Press Ctrl-C")
        kids = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        time.sleep(0.2)
        assert not still_running(kids)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_up_with_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = start_up(tmp_path, port)
        out = proc.communicate(timeout=20)[0]
    assert proc.returncode == 1
    assert f"port {port}" in out and "already in use" in out
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out


def test_up_without_mosquitto_says_so_in_one_line(tmp_path: Path) -> None:
    proc = start_up(tmp_path, free_port(), env_extra={"POSKO_BROKER_BINARY": "no-such-mosquitto"})
    out = proc.communicate(timeout=20)[0]
    assert proc.returncode == 1
    assert "'no-such-mosquitto' not found" in out
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out


@pytest.mark.slow
def test_full_stack_starts_every_part_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    """Broker, hub, arbiter, kiosk and unit: all printed, all gone after Ctrl-C."""
    from posko.broker import free_port

    port = free_port()
    env = dict(os.environ)
    env.update({"POSKO_POSKO_STATE_DIR": str(tmp_path / "var"), "POSKO_BROKER_PORT": str(port),
                "POSKO_MQTT_PORT": str(port), "POSKO_HUB_PORT": str(free_port()),
                "POSKO_KIOSK_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"})
    env["POSKO_KIOSK_HUB_URL"] = f"http://127.0.0.1:{env['POSKO_HUB_PORT']}"
    proc = subprocess.Popen([sys.executable, "-m", "posko", "up"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        text = read_until(proc, "Press Ctrl-C", timeout=90)
        for label in ("broker", "hub", "arbiter", "kiosk", "unit"):
            assert any(line.startswith(label) for line in text.splitlines()), (label, text)
        assert f"http://127.0.0.1:{env['POSKO_HUB_PORT']}/" in text
        assert f"http://127.0.0.1:{env['POSKO_KIOSK_PORT']}/" in text
        assert "not built yet" not in text
        kids = descendants(proc.pid)
        assert len(kids) >= 5
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
        assert proc.returncode == 0, rest
        time.sleep(0.3)
        assert not still_running(kids), rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
