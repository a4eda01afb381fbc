"""bench/ptt.py still runs and its figures hang together (the timings are its own business)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_runs_listeners_and_ends_with_one_json_line() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "ptt.py"), "--quick", "--seconds", "3"],
                         capture_output=True, text=True, timeout=110, check=True).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    for key in ("grant_ms_p95", "m2e_ms_p95", "kbps_per_talker", "kbps_frames", "kbps_talker_link"):
        assert isinstance(summary[key], float), key
    (scenario,) = summary["scenarios"]
    assert scenario["listeners"] == 10
    # The listeners (driven by the bench's shared poller) heard the talker's frames.
    assert scenario["delivery"] >= 0.9, scenario
    # Frames < frames with MQTT framing < everything the talker's link sent (that also
    # carries the floor requests): a topic sent in every frame would break the middle.
    assert scenario["kbps_frames"] < scenario["kbps_per_talker"] <= scenario["kbps_frames"] + 4
    assert scenario["kbps_per_talker"] < scenario["kbps_talker_link"]
    # Measured by the kernel: the topic name in each of 50 frames a second would add
    # ~16 kbit/s; floor requests and releases of 1 s spurts add a few.
    assert scenario["kbps_talker_link"] < scenario["kbps_per_talker"] + 6
