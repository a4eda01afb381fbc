"""Updates with rollback: a good release stays, a broken one rolls back by itself and says so.

Real parts: the hub (`posko hub serve`) stores and serves the wheels published with `posko hub
release-publish`, which announces them retained on the session's Mosquitto; the unit's
updater hears the announcement over a real MqttLink, downloads with its enrolment token,
checks the SHA-256, makes a real venv beside the running release, switches the `current`
link and then checks the new release by running it (`posko --version`, a test question to
the assistant). The restart systemd would do is a callback here; the release layout is a temp
folder whose first release is this checkout's venv (its third-party packages).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from firmware.agent import UnitContext
from firmware.panel import NoPanel
from firmware.updater import (
    Releases,
    Updater,
    UpdateState,
    busy_reasons,
    guard,
    release_problems,
    should_update,
)
from posko.broker import free_port
from posko.config import load_settings
from posko.enroll import write_token
from posko.mqtt import MqttLink
from tests.hub.support import HubProcess
from tests.install.rootfs import copy_source

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parents[1]


# --- pure parts -------------------------------------------------------------------------

def test_should_update_only_to_a_new_release_that_did_not_fail_here() -> None:
    idle = UpdateState()
    assert should_update("0.2.0", "0.1.0", idle)
    assert not should_update("0.1.0", "0.1.0", idle)
    assert not should_update("", "0.1.0", idle)
    assert not should_update("0.2.0", "0.1.0", UpdateState(state="rolled-back", version="0.2.0"))
    assert should_update("0.2.1", "0.1.0", UpdateState(state="rolled-back", version="0.2.0"))


def test_updates_wait_for_a_transmission_a_resident_and_the_kiosk() -> None:
    assert busy_reasons({"tx": "idle", "talker": ""}, False) == []
    assert busy_reasons({"tx": "sending", "talker": ""}, False) == ["a transmission is on"]
    assert busy_reasons({"tx": "idle", "talker": "ptt-02"}, False) == ["receiving ptt-02"]
    assert busy_reasons(None, True) == ["a resident is being served (voice)"]
    assert busy_reasons(None, False, {"busy": True}) == ["a resident is using the kiosk"]


def test_guard_rolls_back_a_release_that_never_reported_healthy(tmp_path: Path) -> None:
    for version in ("0.1.0", "0.2.0"):
        (tmp_path / "releases" / version / "bin").mkdir(parents=True)
        (tmp_path / "releases" / version / "bin" / "python").touch()
    releases = Releases(tmp_path)
    releases.switch("0.2.0")
    state_file = tmp_path / "update.json"
    UpdateState(state="trying", version="0.2.0", previous="0.1.0", deadline=1000.0).save(state_file)
    assert "nothing to do" in guard(tmp_path, state_file, now=999.0)
    assert releases.current() == "0.2.0"
    assert "rolled back 0.2.0 -> 0.1.0" in guard(tmp_path, state_file, now=1001.0)
    assert releases.current() == "0.1.0"
    assert UpdateState.load(state_file).state == "rolled-back"
    # The guard is run by the system Python from a copy of the file: standard library only.
    copy = tmp_path / "update_guard.py"
    copy.write_text((ROOT / "firmware" / "updater.py").read_text())
    UpdateState(state="trying", version="0.1.0", previous="0.2.0", deadline=1.0).save(state_file)
    releases.switch("0.1.0")
    result = subprocess.run(["/usr/bin/python3", "-I", str(copy), "guard", str(tmp_path), str(state_file)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "rolled back 0.1.0 -> 0.2.0" in result.stdout, result.stderr
    assert releases.current() == "0.2.0"


# --- a real hub, a real broker, real venvs ------------------------------------------------

def build_release(folder: Path, version: str, break_it: bool = False) -> Path:
    """A Posko wheel of this checkout at `version`; broken: `posko` cannot start."""
    src = folder / f"src-{version}"
    copy_source(src)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(re.sub(r'^version = ".*"$', f'version = "{version}"', pyproject.read_text(), count=1,
                                flags=re.M))
    init = src / "posko" / "__init__.py"
    init.write_text(re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text()))
    if break_it:  # the kind of mistake a release can carry: an import that fails at start
        cli = src / "posko" / "cli.py"
        cli.write_text(cli.read_text() + "\nimport posko_module_left_out_of_the_release  # noqa\n")
    out = folder / "wheels"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                             "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return next(out.glob(f"posko-{version}-*.whl"))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("releases")
    return {"good": build_release(folder, "0.1.1"), "broken": build_release(folder, "0.1.2", break_it=True)}


@pytest.fixture
def unit(tmp_path: Path, broker, monkeypatch):
    """A hub, an enrolled unit's context on the shared broker, and a release layout."""
    root = f"test/{uuid.uuid4().hex[:8]}/posko/v1"
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "hub",
                     mqtt_port=broker.port, topic_root=root).start()
    unit_id, token = hub.add_unit()
    state = tmp_path / "unit"
    for key, value in {"POSKO_POSKO_STATE_DIR": str(state), "POSKO_POSKO_UNIT_ID": unit_id,
                       "POSKO_MQTT_PORT": str(broker.port), "POSKO_MQTT_TOPIC_ROOT": root,
                       "POSKO_KIOSK_HUB_URL": hub.base}.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    write_token(settings, token)
    prefix = tmp_path / "opt"
    (prefix / "releases").mkdir(parents=True)
    os.symlink(VENV, prefix / "releases" / "0.1.0")  # the release setup.sh installed
    os.symlink("releases/0.1.0", prefix / "current")
    link = MqttLink(settings.mqtt, client_id=f"unit-{unit_id}").start()
    assert link.wait_connected(10)
    ctx = UnitContext(settings, link, NoPanel(), settings.state_dir)
    try:
        yield {"hub": hub, "ctx": ctx, "prefix": prefix}
    finally:
        link.stop()
        hub.stop()


def publish(hub: HubProcess, wheel: Path) -> None:
    result = hub.cli("hub", "release-publish", str(wheel))
    assert "announced on" in result.stdout, result.stdout + result.stderr


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.broker
def test_a_good_release_stays_and_a_broken_one_rolls_back_and_says_so(unit, wheels) -> None:
    ctx, prefix, hub = unit["ctx"], unit["prefix"], unit["hub"]
    restarts: list[str] = []
    busy = {"now": ["a transmission is on"]}

    def make_updater() -> Updater:
        # What the new agent checks after a restart: the release runs and answers.
        return Updater(prefix, busy=lambda: busy["now"], deadline_s=20, health_every_s=1, idle_wait_s=0.2,
                       health=lambda: release_problems(prefix, updater.state.version),
                       restart=lambda: restarts.append(Releases(prefix).current()))

    updater = make_updater()
    updater.start(ctx)
    publish(hub, wheels["good"])
    wait_for(lambda: updater.status()["state"] == "waiting", 20, "the update to wait")
    assert updater.status()["waiting_for"] == ["a transmission is on"]
    assert Releases(prefix).current() == "0.1.0"  # nothing installed during a transmission
    busy["now"] = []
    wait_for(lambda: restarts, 180, "the switch to 0.1.1")
    assert restarts == ["0.1.1"] and updater.status()["state"] == "trying"
    updater.stop()

    # systemd restarts the agent on the new release; it checks itself and keeps it.
    updater = make_updater()
    updater.start(ctx)
    wait_for(lambda: updater.status()["state"] != "trying", 120, "the health check of 0.1.1")
    assert updater.status() | {"reason": ""} == {"state": "ok", "running": "0.1.1", "version": "0.1.1",
                                                 "reason": ""}
    out = subprocess.run([str(prefix / "current" / "bin" / "posko"), "--version"], capture_output=True, text=True)
    assert "0.1.1" in out.stdout

    publish(hub, wheels["broken"])
    wait_for(lambda: len(restarts) == 2, 180, "the switch to 0.1.2")
    assert restarts[-1] == "0.1.2"
    updater.stop()
    updater = make_updater()
    updater.start(ctx)
    wait_for(lambda: updater.status()["state"] != "trying", 60, "the rollback of 0.1.2")
    status = updater.status()
    assert status["state"] == "rolled-back" and status["running"] == "0.1.1", status
    assert "posko_module_left_out_of_the_release" in status["reason"]
    # The state is saved before the restart is asked for: wait for the restart itself.
    wait_for(lambda: len(restarts) == 3, 10, "the restart on the good release")
    assert restarts[-1] == "0.1.1"  # restarted on the good release again
    assert Releases(prefix).current() == "0.1.1"
    # The retained announcement of the broken release is not tried again.
    updater._on_current("", (hub.state_dir / "hub" / "releases" / "current.json").read_bytes())
    time.sleep(1)
    assert updater.status()["state"] == "rolled-back" and len(restarts) == 3
    updater.stop()
    # What the fleet page shows comes from the heartbeat's parts["update"].
    assert UpdateState.load(ctx.state_dir / "unit" / "update.json").state == "rolled-back"


def test_the_hub_refuses_a_file_that_is_not_a_posko_wheel(tmp_path: Path, broker) -> None:
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "hub",
                     mqtt_port=broker.port, topic_root="test/x/posko/v1", port=free_port())
    hub.state_dir.mkdir(parents=True)
    bogus = tmp_path / "posko-9.9.9-py3-none-any.whl"
    bogus.write_bytes(b"not a zip")
    result = hub.cli("hub", "release-publish", str(bogus), check=False)
    assert result.returncode == 2 and "not a zip file" in result.stderr
    assert not (hub.state_dir / "hub" / "releases" / "current.json").exists()


def test_threads_do_not_leak_from_an_updater_on_a_checkout(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("POSKO_POSKO_STATE_DIR", str(tmp_path))
    settings = load_settings()
    ctx = UnitContext(settings, MqttLink(settings.mqtt, client_id="x"), NoPanel(), tmp_path)
    before = threading.active_count()
    updater = Updater(tmp_path / "no-release-layout")
    updater.start(ctx)
    assert updater.status() == {"state": "off", "running": ""}
    assert threading.active_count() == before


@pytest.mark.broker
def test_the_fleet_page_shows_each_units_version_and_update_state(tmp_path: Path, broker) -> None:
    from posko import topics
    from posko.messages import Heartbeat
    from tests.hub.support import Officer, wait_until
    from tests.support.mqtt import Client

    root = f"test/{uuid.uuid4().hex[:8]}/posko/v1"
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "hub",
                     mqtt_port=broker.port, topic_root=root).start()
    try:
        unit_id, _token = hub.add_unit()
        officer = Officer(hub, *hub.add_user("operator"))
        beat = Heartbeat(unit=unit_id, state="online", version="0.1.1", uptime_s=5, disk_free_mb=900,
                         interval_s=30, parts={"update": {"state": "rolled-back", "running": "0.1.1",
                                                          "version": "0.1.2",
                                                          "reason": "posko --version failed"}})
        client = Client(broker.port)
        assert client.wait_connected(10)
        client.publish(topics.unit_status(unit_id, root), beat.to_json(), qos=1, retain=True)

        def row() -> str:
            page = officer.get("/armada/tabel").text
            match = re.search(rf'<tr data-unit="{unit_id}".*?</tr>', page, re.S)
            return match.group(0) if match else ""

        wait_until(lambda: "Pembaruan gagal dan dikembalikan" in row(), timeout=20)
        assert "0.1.1" in row() and "0.1.2 posko --version failed" in row()
        client.close()
    finally:
        hub.stop()


def test_the_agent_waits_for_the_kiosk_app_when_it_says_a_resident_is_at_the_screen(tmp_path, monkeypatch) -> None:
    import firmware.agent as agent_module
    from firmware.agent import Agent

    monkeypatch.setenv("POSKO_POSKO_STATE_DIR", str(tmp_path))
    agent = Agent(load_settings(), components=[], panel=NoPanel())
    monkeypatch.setattr(agent_module, "outbox_figures", lambda settings: {"pending": 0, "busy": True})
    assert agent.busy_reasons() == ["a resident is using the kiosk"]
    monkeypatch.setattr(agent_module, "outbox_figures", lambda settings: None)  # no kiosk app
    assert agent.busy_reasons() == []
