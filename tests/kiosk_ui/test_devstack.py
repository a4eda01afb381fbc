"""`posko up` serves the kiosk of one simulated unit, enrolled with the dev hub by itself,
and a report typed on that kiosk reaches the real hub (checked through the hub's ticket API)."""

from __future__ import annotations

import importlib.util
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from posko.broker import free_port
from tests.support.procs import read_until

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]


def test_posko_up_serves_an_enrolled_kiosk_whose_reports_reach_the_hub(tmp_path: Path) -> None:
    hub_built = importlib.util.find_spec("hub.cli") is not None
    (tmp_path / "posko.toml").write_text("")
    ports = {"broker": free_port(), "hub": free_port(), "kiosk": free_port()}
    env = dict(os.environ)
    env.update({"POSKO_CONFIG": str(tmp_path / "posko.toml"), "POSKO_POSKO_STATE_DIR": str(tmp_path / "var"),
                "POSKO_BROKER_PORT": str(ports["broker"]), "POSKO_MQTT_PORT": str(ports["broker"]),
                "POSKO_HUB_PORT": str(ports["hub"]), "POSKO_KIOSK_PORT": str(ports["kiosk"]),
                "POSKO_KIOSK_HUB_URL": f"http://127.0.0.1:{ports['hub']}",
                "POSKO_KIOSK_SYNC_INTERVAL_S": "0.5", "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen([sys.executable, "-m", "posko", "up", "--only", "hub", "--only", "kiosk"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        text = read_until(proc, "Press Ctrl-C")
        kiosk_lines = [line for line in text.splitlines() if line.startswith("kiosk ") and "http://" in line]
        assert kiosk_lines, text
        url = f"http://127.0.0.1:{ports['kiosk']}"
        assert url in kiosk_lines[0]
        assert "Lapor" in requests.get(url + "/", timeout=5).text
        if not hub_built:
            assert "kiosk: not enrolled (hub not built)" in text
            return
        assert "kiosk: unit dev-kiosk-1 enrolled" in text, text
        assert (tmp_path / "var" / "unit" / "hub-token").stat().st_mode & 0o077 == 0

        png = io.BytesIO()
        Image.new("RGB", (2400, 1800), "darkgreen").save(png, "PNG")
        answer = requests.post(url + "/api/lapor", data={
            "category": "pencurian", "description": "motor beat hitam plat G 1234 XY hilang di parkiran pasar",
            "where": "here", "when_offset_min": "0", "phone": "081234567890", "consent": "1"},
            files={"photo": ("p.png", png.getvalue(), "image/png")}, timeout=15).json()
        assert answer["ok"], answer
        ticket, pin = answer["ticket"], answer["pin"]
        # the kiosk's sync worker delivers it; the hub's own ticket API then knows it
        hub_ticket = f"http://127.0.0.1:{ports['hub']}/api/v1/tickets/{ticket.replace('-', '')}"
        deadline = time.monotonic() + 30
        state = None
        while time.monotonic() < deadline:
            check = requests.get(hub_ticket, params={"pin": pin}, timeout=5)
            if check.status_code == 200:
                state = check.json()
                break
            time.sleep(0.5)
        assert state is not None and state["state"] == "baru"
        assert "phone" not in state and "081234567890" not in check.text
        seen = requests.post(url + "/api/cek", json={"ticket": ticket, "pin": pin}, timeout=10).json()
        assert seen["ok"] and not seen["offline"] and seen["state"] == "baru"
        assert requests.get(url + "/api/status", timeout=5).json()["online"] is True
        from kiosk_ui.outbox import Outbox

        box = Outbox(tmp_path / "var" / "kiosk" / "outbox", create=False)
        deadline = time.monotonic() + 20
        while box.list()[0].state != "synced" and time.monotonic() < deadline:
            time.sleep(0.2)
        item = box.list()[0]
        assert item.state == "synced" and item.photos[0]["uploaded"]  # the hub has the photo too
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
