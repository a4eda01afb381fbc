"""The fleet page flags a unit whose disk is nearly full or full (from its heartbeat), so a
maintainer sees it before reports stop being stored there."""

from __future__ import annotations

import re

import pytest

from posko import topics
from posko.messages import Heartbeat
from tests.hub.support import Officer, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def _row(html: str, unit_id: str) -> str:
    match = re.search(rf'<tr data-unit="{re.escape(unit_id)}".*?</tr>', html, re.S)
    return match.group(0) if match else ""


def test_low_and_full_disks_are_flagged_on_the_fleet_table(sqlite_hub, mqtt_client) -> None:
    hub = sqlite_hub
    officer = Officer(hub, *hub.add_user("operator"))
    free = {"ok": 2048.0, "low": 320.0, "full": 12.0}  # the default threshold is 500 MB
    units = {kind: hub.add_unit()[0] for kind in free}
    client = mqtt_client()
    for kind, unit_id in units.items():
        beat = Heartbeat(unit=unit_id, state="online", version="0.1.0", disk_free_mb=free[kind], interval_s=30)
        client.publish(topics.unit_status(unit_id, hub.topic_root), beat.to_json(), qos=1)

    def table_with_all_online() -> str | None:
        text = officer.get("/armada/tabel").text
        return text if all('data-online="1"' in _row(text, u) for u in units.values()) else None

    html = wait_until(table_with_all_online, timeout=40)
    ok, low, full = (_row(html, units[k]) for k in ("ok", "low", "full"))
    assert "2048 MB" in ok and "disk-low" not in ok and "disk-full" not in ok
    assert "320 MB" in low and "disk hampir penuh" in low and "disk-full" not in low
    assert "12 MB" in full and "disk penuh" in full and "disk-low" not in full
