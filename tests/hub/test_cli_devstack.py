"""`posko up --only hub` and the hub's CLI: URL line, dev admin login, users, clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from posko.broker import free_port
from tests.hub.support import clean_env

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


def test_posko_up_prints_hub_line_and_dev_admin_can_log_in(tmp_path: Path):
    broker_port, hub_port = free_port(), free_port()
    env = clean_env(POSKO_POSKO_STATE_DIR=str(tmp_path / "var"), POSKO_BROKER_PORT=str(broker_port),
                    POSKO_MQTT_PORT=str(broker_port), POSKO_HUB_PORT=str(hub_port), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "posko", "up", "--only", "hub"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(seen)
        hub_line = [ln for ln in seen if ln.startswith("hub ")]
        assert hub_line, text
        match = re.search(r"(http://\S+)\s+\(login (\S+) / (\S+), kept in (\S+)\)", hub_line[0])
        assert match, hub_line[0]
        url, user, password, kept = match.groups()
        assert Path(kept).read_text().strip() == password
        assert oct(os.stat(kept).st_mode & 0o777) == "0o600"
        http = requests.Session()
        page = http.get(url + "masuk", timeout=10)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
        login = http.post(url + "masuk", data={"csrf_token": token, "username": user, "password": password},
                          timeout=10)
        assert login.status_code == 200 and "Antrean laporan" in login.text
        assert http.get(url + "armada", timeout=10).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "stopped." in out
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{hub_port}/masuk", timeout=3)


def test_users_add_rejects_bad_input_and_prompts(tmp_path: Path):
    env = clean_env(POSKO_POSKO_STATE_DIR=str(tmp_path / "var"))

    def posko(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "posko", *args], env=env, cwd=tmp_path, input=stdin,
                              capture_output=True, text=True, timeout=60)

    assert posko("hub", "migrate").returncode == 0
    short = posko("hub", "users", "add", "aziz", "--role", "supervisor", "--password-stdin", stdin="pendek\n")
    assert short.returncode == 1 and "at least 10" in short.stderr
    bad_role = posko("hub", "users", "add", "aziz", "--role", "raja", "--password-stdin", stdin="x" * 12)
    assert bad_role.returncode != 0 and "raja" in bad_role.stderr + bad_role.stdout
    prompted = posko("hub", "users", "add", "aziz", "--role", "supervisor",
                     stdin="rahasia-panjang-1\nrahasia-panjang-1\n")
    assert prompted.returncode == 0, prompted.stderr
    again = posko("hub", "users", "add", "aziz", "--role", "operator", "--password-stdin", stdin="y" * 12)
    assert again.returncode == 1 and "exists" in again.stderr
    dup = posko("hub", "units", "add", "kiosk-1")
    assert dup.returncode == 0
    assert posko("hub", "units", "add", "kiosk-1").returncode == 1
    assert posko("hub", "units", "add", "bad/id").returncode == 1
