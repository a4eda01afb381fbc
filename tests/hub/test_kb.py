"""Knowledge-base bundles on the hub: deterministic archives, `posko hub kb-publish`, the
retained `kb/current` announcement and `GET /api/v1/kb/<version>`, against a real
`posko hub serve` and a real broker."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
import requests

from assistant.kb import SHIPPED_KB
from hub.kb import build_bundle
from posko.messages import KbCurrent
from tests.hub.support import HubProcess
from tests.support.kb import modified_kb, next_announcement

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def kb_hub(broker, tmp_path_factory) -> Iterator[HubProcess]:
    """A hub of this module's own (its own state dir and topic root); `first_announcement`
    is the first retained kb/current heard after it started."""
    hub = HubProcess(db_url=f"sqlite:///{tmp_path_factory.mktemp('kbhubdb') / 'hub.db'}",
                     state_dir=tmp_path_factory.mktemp("kbhub"), mqtt_port=broker.port,
                     topic_root=f"test/{uuid.uuid4().hex[:8]}/posko/v1").start()
    try:
        hub.first_announcement = next_announcement(broker, hub)
        yield hub
    finally:
        hub.stop()


def test_a_bundle_is_the_same_bytes_for_the_same_kb_and_changes_with_it(tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(SHIPPED_KB, copy)
    for path in copy.rglob("*.yaml"):
        os.utime(path, (1_000_000, 1_000_000))  # other mtimes: the bundle must not see them
    (copy / "README.txt").write_text("not part of the knowledge base")
    first = build_bundle(SHIPPED_KB)
    assert build_bundle(copy) == first
    changed = modified_kb(tmp_path, "v2")
    assert build_bundle(changed) != first


def test_the_hub_announces_its_configured_kb_on_first_start(kb_hub) -> None:
    shipped = build_bundle(SHIPPED_KB)
    digest = hashlib.sha256(shipped).hexdigest()
    assert kb_hub.first_announcement == KbCurrent(version=digest[:12], sha256=digest,
                                                  path=f"/api/v1/kb/{digest[:12]}")


def test_kb_publish_stores_and_announces_a_new_bundle(kb_hub, broker, tmp_path) -> None:
    before = next_announcement(broker, kb_hub)
    kb = modified_kb(tmp_path, uuid.uuid4().hex[:8])
    done = kb_hub.cli("hub", "kb-publish", str(kb))
    data = build_bundle(kb)
    digest = hashlib.sha256(data).hexdigest()
    assert digest[:12] in done.stdout
    current = next_announcement(broker, kb_hub, after=before)
    assert current == KbCurrent(version=digest[:12], sha256=digest, path=f"/api/v1/kb/{digest[:12]}")
    stored = kb_hub.state_dir / "hub" / "kb"
    assert (stored / f"{digest[:12]}.tar.gz").read_bytes() == data
    assert json.loads((stored / "current.json").read_text())["version"] == digest[:12]


def test_kb_publish_refuses_a_broken_kb_in_one_line_with_exit_2(kb_hub, broker, tmp_path) -> None:
    before = (kb_hub.state_dir / "hub" / "kb" / "current.json").read_bytes()
    kb = modified_kb(tmp_path, "broken")
    (kb / "skck" / "skck-biaya.yaml").write_text("id: [broken")
    done = kb_hub.cli("hub", "kb-publish", str(kb), check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "NOT published" in lines[0] and "skck-biaya.yaml" in lines[0], done.stderr
    assert (kb_hub.state_dir / "hub" / "kb" / "current.json").read_bytes() == before
    assert next_announcement(broker, kb_hub).to_json() == before


def test_the_bundle_api_needs_a_unit_token_and_a_known_version(kb_hub) -> None:
    current = json.loads((kb_hub.state_dir / "hub" / "kb" / "current.json").read_text())
    url = f"{kb_hub.base}{current['path']}"
    assert requests.get(url, timeout=10).status_code == 401
    bad = requests.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"] == "unauthorized"
    _unit, token = kb_hub.add_unit()
    auth = {"Authorization": f"Bearer {token}"}
    good = requests.get(url, headers=auth, timeout=10)
    assert good.status_code == 200 and good.headers["Content-Type"] == "application/gzip"
    assert hashlib.sha256(good.content).hexdigest() == current["sha256"]
    for version in ("0123456789ab", "..%2F..%2Fsecret-key", "current"):
        missing = requests.get(f"{kb_hub.base}/api/v1/kb/{version}", headers=auth, timeout=10)
        assert missing.status_code == 404 and missing.json()["error"] == "not_found", version


def test_kb_publish_warns_about_entries_whose_period_is_over(kb_hub, broker, tmp_path) -> None:
    kb = modified_kb(tmp_path, uuid.uuid4().hex[:8])
    lilin = next(kb.rglob("nataru-operasi-lilin.yaml"))
    assert "valid_until: 2026-01-02" in lilin.read_text(encoding="utf-8")  # Operasi Lilin 2025
    done = kb_hub.cli("hub", "kb-publish", str(kb))
    assert "warning: nataru/nataru-operasi-lilin.yaml: valid_until 2026-01-02 has passed" in done.stderr
    lilin.write_text(lilin.read_text(encoding="utf-8").replace("valid_until: 2026-01-02",
                                                               "valid_until: 2999-01-02"))
    done = kb_hub.cli("hub", "kb-publish", str(kb))
    assert "nataru-operasi-lilin.yaml" not in done.stderr
