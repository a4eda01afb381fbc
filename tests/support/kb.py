"""Knowledge-base helpers shared by the hub's and the unit's KB-update tests."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from assistant.kb import SHIPPED_KB
from posko.messages import KbCurrent


def next_announcement(broker, hub, *, after: KbCurrent | None = None, timeout_s: float = 30.0) -> KbCurrent:
    """The retained kb/current of this hub; with `after`, the first one that differs from it."""
    from tests.support.mqtt import Client

    client = Client(broker.port)
    try:
        assert client.wait_connected()
        client.subscribe(f"{hub.topic_root}/kb/current")
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = client.expect(timeout=left)
            except AssertionError:
                break
            current = KbCurrent.from_json(msg.payload)
            if after is None or current != after:
                return current
    finally:
        client.close()
    raise AssertionError(f"no new kb/current within {timeout_s} s\n{hub.log_text()[-2000:]}")


def modified_kb(tmp_path: Path, marker: str) -> Path:
    kb = tmp_path / f"kb-{marker}"
    shutil.copytree(SHIPPED_KB, kb)
    entry = kb / "skck" / "skck-biaya.yaml"
    entry.write_text(entry.read_text().replace("Biaya penerbitan SKCK", f"Biaya SKCK ({marker})"))
    return kb
