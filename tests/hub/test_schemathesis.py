"""Schemathesis against the hub's own OpenAPI document: no input makes it answer 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(240)]


def test_no_server_errors(hub_server):
    hub = hub_server
    _unit, token = hub.add_unit()
    st = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [str(st), "run", f"{hub.base}/api/v1/openapi.json", "--url", f"{hub.base}/api/v1",
         "--checks", "not_a_server_error", "--max-examples", "50", "--seed", "1",
         "--header", f"Authorization: Bearer {token}", "--request-timeout", "20"],
        capture_output=True, text=True, timeout=220, cwd=hub.state_dir)
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    assert "11/11" in summary and " passed" in summary  # every operation was exercised (ping, receipts, alerts, unanswered …)
    assert " 500 " not in hub.log_text()  # no traceback-worthy failure in the workers either

