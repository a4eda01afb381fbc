"""Maintainers' commands: `posko status`, `posko logs`, and doctor's checks of an installed unit."""

from __future__ import annotations

import email.utils
import http.server
import subprocess
import threading
import time
from pathlib import Path

import pytest

from firmware.updater import UpdateState
from posko.config import load_settings
from posko.doctor import (
    FAIL,
    OK,
    WARN,
    cert_days_left,
    check_certificates,
    check_clock,
    check_services,
    check_update,
)
from posko.logs import journal_argv
from posko.status import ServiceState, parse_show, render, service_states

SHOW = """Id=posko-unit.service
LoadState=loaded
ActiveState=active
SubState=running
ActiveEnterTimestamp=Tue 2026-12-01 02:00:01 WIB
NRestarts=4
MainPID=812

Id=posko-kiosk-ui.service
LoadState=loaded
ActiveState=failed
SubState=failed
ActiveEnterTimestamp=
NRestarts=0
MainPID=0

Id=posko-hub.service
LoadState=not-found
ActiveState=inactive
SubState=dead
ActiveEnterTimestamp=
NRestarts=0
MainPID=0
"""


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(None, environ={"POSKO_POSKO_STATE_DIR": str(tmp_path / "var"),
                                        "POSKO_POSKO_UNIT_ID": "kiosk-07"})


def test_systemctl_show_is_read_into_states_and_not_installed_units_are_left_out() -> None:
    def fake_run(argv, **kw):
        assert argv[:2] == ["systemctl", "show"] and "posko-unit.service" in argv
        return subprocess.CompletedProcess(argv, 0, SHOW, "")

    states = service_states(fake_run)
    assert [s.name for s in states] == ["posko-unit", "posko-kiosk-ui"]
    unit, ui = states
    assert unit.healthy and unit.restarts == 4 and unit.pid == 812 and "02:00:01" in unit.since
    assert not ui.healthy and ui.active == "failed"


def test_status_is_one_screen_with_release_update_and_each_service(settings) -> None:
    lines = render(settings, parse_show(SHOW)[:2], "0.1.1",
                   {"state": "rolled-back", "version": "0.1.2", "reason": "posko --version failed"})
    text = "\n".join(lines)
    assert lines[0].startswith("posko ") and "unit kiosk-07" in lines[0] and "release 0.1.1" in lines[0]
    assert "update   rolled-back 0.1.2 posko --version failed" in text
    assert "[ok  ] posko-unit" in text and "4 restarts" in text and "(unit agent)" in text
    assert "[FAIL] posko-kiosk-ui" in text
    assert len(lines) <= 24  # one screen
    assert "systemd is not running here" in "\n".join(render(settings, None, "", {}))


def test_doctor_names_a_failed_and_a_restarting_service_with_the_fix(settings) -> None:
    checks = check_services(settings, parse_show(SHOW)[:2])
    unit, ui = checks
    assert unit.status == WARN and "4 restarts" in unit.detail and "posko logs --errors" in unit.fix
    assert ui.status == FAIL and "systemctl restart posko-kiosk-ui" in ui.fix
    healthy = ServiceState("posko-unit", "loaded", "active", "running", "x", 0, 1)
    assert check_services(settings, [healthy])[0].status == OK
    assert check_services(settings, None).status == OK  # a laptop: nothing to check


def test_logs_filter_the_journal_by_part() -> None:
    argv = journal_argv("kiosk", follow=True, lines=50, since="1 hour ago", errors_only=True)
    assert argv[0] == "journalctl" and "-f" in argv and argv[argv.index("-n") + 1] == "50"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-u"] == ["posko-kiosk-ui.service",
                                                                      "posko-kiosk-browser.service"]
    assert argv[argv.index("--since") + 1] == "1 hour ago" and argv[argv.index("-p") + 1] == "warning"
    everything = journal_argv(None)
    assert "posko-hub-ingest.service" in everything and "mosquitto.service" in everything
    with pytest.raises(KeyError):
        journal_argv("bogus")


class SkewedHub(http.server.BaseHTTPRequestHandler):
    skew_s = 0.0

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Date", email.utils.formatdate(time.time() + self.skew_s, usegmt=True))
        self.end_headers()

    def date_time_string(self, timestamp=None):  # the Date send_response adds: skewed too
        return email.utils.formatdate(time.time() + self.skew_s, usegmt=True)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(("skew", "status"), [(0, OK), (20, WARN), (-600, FAIL)])
def test_clock_offset_to_the_hub(tmp_path: Path, skew: float, status: str) -> None:
    handler = type("Hub", (SkewedHub,), {"skew_s": skew})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = load_settings(None, environ={"POSKO_POSKO_STATE_DIR": str(tmp_path),
                                                "POSKO_KIOSK_HUB_URL": f"http://127.0.0.1:{server.server_port}"})
        check = check_clock(settings)
        assert check.status == status, check
        if status != OK:
            assert "timedatectl" in check.fix
    finally:
        server.shutdown()
    unreachable = load_settings(None, environ={"POSKO_POSKO_STATE_DIR": str(tmp_path),
                                               "POSKO_KIOSK_HUB_URL": "http://127.0.0.1:9"})
    assert check_clock(unreachable).status == WARN


def make_cert(path: Path, days: int) -> Path:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", str(days), "-subj", "/CN=hub", "-keyout", str(path.with_suffix(".key")),
                    "-out", str(path)], check=True, capture_output=True)
    return path


def test_certificate_expiry_of_the_hub_and_of_the_pinned_copy(tmp_path: Path, settings) -> None:
    long = make_cert(tmp_path / "long.crt", 3650)
    short = make_cert(tmp_path / "short.crt", 10)
    assert 3640 <= cert_days_left(long) <= 3650
    assert check_certificates(settings, hub_cert=str(long), pinned="/nonexistent").status == OK
    pinned = check_certificates(settings, hub_cert="/nonexistent", pinned=str(short))
    assert pinned.status == WARN and "expires in" in pinned.detail and "setup.sh" in pinned.fix
    assert check_certificates(settings, hub_cert="/nonexistent", pinned="/nonexistent").status == OK


def test_update_state_is_reported_with_what_to_do(settings) -> None:
    assert check_update(settings).status == OK
    UpdateState(state="rolled-back", version="0.1.2", reason="posko --version failed").save(
        settings.state_dir / "unit" / "update.json")
    check = check_update(settings)
    assert check.status == WARN and "0.1.2 rolled-back: posko --version failed" in check.detail
    assert "publish a new one" in check.fix


def test_status_and_logs_are_registered_commands() -> None:
    for command in ("status", "logs"):
        result = subprocess.run([str(Path(__import__("sys").executable).with_name("posko")), command, "--help"],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0 and f"Usage: posko {command}" in result.stdout
