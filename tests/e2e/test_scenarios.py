"""Field scenarios end to end, on the whole stack that `posko up` starts.

One `posko up` (real Mosquitto, hub under gunicorn with its MQTT ingest, arbiter, kiosk web
app with its sync worker, unit agent) serves every test in this module; residents use the
kiosk in Chromium and officers use the hub's dashboard in Chromium.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from posko.broker import free_port
from tests.support.procs import read_until

pytestmark = [pytest.mark.broker, pytest.mark.browser, pytest.mark.slow]


@dataclass
class Stack:
    hub: str
    kiosk: str
    admin: tuple[str, str]
    state: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("stack")
    port, hub_port, kiosk_port = free_port(), free_port(), free_port()
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("POSKO_") and not k.startswith("POSKO_TEST_")]:
        del env[key]
    env.update({"POSKO_POSKO_STATE_DIR": str(folder / "var"), "POSKO_BROKER_PORT": str(port),
                "POSKO_MQTT_PORT": str(port), "POSKO_HUB_PORT": str(hub_port),
                "POSKO_KIOSK_PORT": str(kiosk_port),
                "POSKO_KIOSK_HUB_URL": f"http://127.0.0.1:{hub_port}",
                "POSKO_POSKO_POSKO_NAME": "Posko Alun-alun Batang", "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen([sys.executable, "-m", "posko", "up"], env=env, cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    text = read_until(proc, "Press Ctrl-C", timeout=120)
    match = re.search(r"login (\S+) / (\S+),", text)
    assert match and "kiosk " in text, text
    try:
        yield Stack(hub=f"http://127.0.0.1:{hub_port}", kiosk=f"http://127.0.0.1:{kiosk_port}",
                    admin=(match.group(1), match.group(2)), state=folder / "var", env=env)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def officer(new_page, stack: Stack, path: str = "/laporan"):
    page = new_page(1280, 720)
    page.goto(stack.hub + path)
    page.fill("input[name=username]", stack.admin[0])
    page.fill("input[name=password]", stack.admin[1])
    page.click("button[type=submit]")
    page.wait_for_selector("nav >> text=Laporan")
    return page


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_stolen_motorbike_report_reaches_the_hub_once_and_the_resident_reads_the_verdict(
        stack: Stack, new_page, artifacts: Path) -> None:
    """Scenario 1: Ibu Sari files a report; Bripka Aziz verifies it; she checks her ticket."""
    form = {"category": "pencurian", "where": "here", "when_offset_min": "0",
            "description": "motor beat hitam plat G 1234 XY hilang di parkiran pasar",
            "name": "Sari", "phone": "0812-3456-7890", "consent": "1"}
    answer = requests.post(stack.kiosk + "/api/lapor", data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    receipt = answer.json()
    ticket, pin = receipt["ticket"], receipt["pin"]
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", ticket) and re.fullmatch(r"\d{4}", pin)

    hub = officer(new_page, stack)
    row = wait_for(lambda: (hub.reload(), hub.query_selector(f"a:text('{ticket}')"))[1],
                   what="the report on the hub's queue")
    assert hub.locator(f"a:text('{ticket}')").count() == 1  # exactly once
    row.click()
    hub.wait_for_selector("button[data-state=diverifikasi]")
    hub.click("button[data-state=diverifikasi]")
    hub.wait_for_selector("#audit li[data-action=status]")
    hub.select_option("#note-template", "sendiri")  # the officer writes their own words
    hub.fill("form[action$='/catatan-publik'] input[name=text]", "Petugas sudah menghubungi Anda")
    hub.click("form[action$='/catatan-publik'] button[type=submit]")
    hub.wait_for_selector("#audit li[data-action=catatan_publik]")
    hub.screenshot(path=str(artifacts / "e2e-hub-report-verified.png"))

    resident = new_page(800, 480)
    resident.goto(stack.kiosk + "/cek")
    resident.fill('[data-test="ticket"]', ticket)
    resident.fill('[data-test="pin"]', pin)
    resident.click('[data-test="check"]')
    resident.wait_for_selector('[data-test="cek-result"]:not([hidden])', timeout=30000)
    assert resident.text_content('[data-test="cek-state"]').strip() == "Diverifikasi"
    assert "Petugas sudah menghubungi Anda" in resident.text_content('[data-test="cek-note"]')
    resident.screenshot(path=str(artifacts / "e2e-kiosk-cek-verified.png"))
    assert resident.console_errors == []


def test_an_emergency_typed_at_the_kiosk_reaches_the_dashboard_and_the_ack_comes_back(
        stack: Stack, new_page, artifacts: Path) -> None:
    """Scenario 4: an accident typed at the kiosk; an officer acknowledges on the dashboard."""
    hub = officer(new_page, stack, "/peringatan")
    hub.wait_for_function("() => document.body.dataset.live === 'connected'", timeout=30000)

    resident = new_page(800, 480)
    resident.goto(stack.kiosk + "/tanya")
    resident.fill('[data-test="question"]', "Tolong, ada kecelakaan di depan, orangnya berdarah!")
    resident.click('[data-test="ask"]')
    # While the kiosk waits for the assistant the box says "Sebentar…" and is aria-busy.
    resident.wait_for_selector('[data-test="answer"]:not([hidden])[aria-busy="false"]', timeout=30000)
    shown = resident.text_content('[data-test="answer"]')
    assert "110" in shown and "112" in shown and "119" in shown
    # the kiosk says "sent" only once the hub has it (here: its HTTP receipt), and says when
    resident.wait_for_selector('[data-test="answer"] [data-test="state-sent"]', state="visible", timeout=30000)
    assert "WIB" in resident.text_content('[data-test="sent-when"]')
    resident.screenshot(path=str(artifacts / "e2e-kiosk-alert-sent.png"))

    card = hub.wait_for_selector(".alert-card", timeout=30000)
    text = card.inner_text()
    assert "orangnya berdarah" in text and "Posko Alun-alun Batang" in text
    hub.wait_for_timeout(1000)
    # MQTT and HTTP both carried it: one alert on the dashboard
    assert hub.locator(".alert-card", has_text="orangnya berdarah").count() == 1
    hub.screenshot(path=str(artifacts / "e2e-hub-alert.png"))
    hub.click(".alert-card button.ack")
    resident.wait_for_selector('[data-test="answer"] [data-test="state-acked"]', state="visible", timeout=30000)
    assert "Petugas sudah menerima" in resident.text_content('[data-test="state-acked"]')
    assert resident.is_hidden('[data-test="state-sent"]') and resident.is_hidden('[data-test="state-not-sent"]')
    resident.screenshot(path=str(artifacts / "e2e-kiosk-acked.png"))
    assert resident.console_errors == []


def test_the_maintainer_runs_doctor_on_the_running_unit(stack: Stack) -> None:
    """Scenario 6: `posko doctor` on the unit sees the broker, the hub, the token and the outbox."""
    import json

    result = subprocess.run([sys.executable, "-m", "posko", "doctor", "--json"], env=stack.env,
                            capture_output=True, text=True, timeout=60, cwd=stack.state.parent)
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["broker"]["status"] == "ok", checks["broker"]
    assert checks["hub"]["status"] == "ok", checks["hub"]
    assert checks["enrolment"]["status"] == "ok", checks["enrolment"]
    assert checks["outbox"]["status"] in ("ok", "warn") and "waiting" in checks["outbox"]["detail"]
    assert report["status"] != "fail" and result.returncode == 0, report
