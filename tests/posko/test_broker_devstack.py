"""`posko up`'s broker holds the protections a deployment has: no anonymous clients, a
password per dev-stack client kept in the state dir, and the generated ACL (a unit cannot
speak as the command center, the kiosk app cannot speak as the unit's assistant)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from posko import topics
from posko.broker import dev_client_env, dev_users, free_port, with_dev_login
from posko.config import load_settings
from tests.support.mqtt import Client
from tests.support.procs import read_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


@pytest.fixture
def dev_broker(tmp_path: Path):
    port = free_port()
    env = dict(os.environ)
    env.update({"POSKO_POSKO_STATE_DIR": str(tmp_path / "var"), "POSKO_BROKER_PORT": str(port),
                "POSKO_MQTT_PORT": str(port), "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen([sys.executable, "-m", "posko", "up", "--only", "none"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        text = read_until(proc, "Press Ctrl-C")
        settings = load_settings(None, environ={"POSKO_POSKO_STATE_DIR": str(tmp_path / "var"),
                                                "POSKO_BROKER_PORT": str(port), "POSKO_MQTT_PORT": str(port)})
        yield settings, text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.communicate(timeout=20)


def _as(settings, role: str) -> Client:
    env = dev_client_env(settings, role)
    client = Client(int(env["POSKO_MQTT_PORT"]), username=env["POSKO_MQTT_USERNAME"],
                    password=env["POSKO_MQTT_PASSWORD"])
    assert client.wait_connected(), f"{role} could not log in"
    return client


def _heard(client: Client, wait: float = 1.0) -> list:
    out = []
    while True:
        try:
            out.append(client.expect(wait))
        except AssertionError:
            return out


def test_the_dev_broker_refuses_anonymous_clients_and_forged_publishes(dev_broker) -> None:
    settings, text = dev_broker
    port = settings.broker.port
    anonymous = Client(port)
    assert not anonymous.wait_connected(3), "an anonymous client got into the dev broker"
    anonymous.close()
    logins = json.loads((settings.state_dir / "broker" / "users.json").read_text())
    assert oct((settings.state_dir / "broker" / "users.json").stat().st_mode & 0o777) == "0o600"
    assert set(dev_users(settings.posko.unit_id).values()) <= set(logins)
    assert f"-u watch -P {logins['watch']}" in text  # how to watch the traffic, printed

    root, unit_id = settings.mqtt.topic_root, settings.posko.unit_id
    watch, unit, kiosk, hub = (_as(settings, r) for r in ("watch", "unit", "kiosk", "hub"))
    try:
        watch.subscribe(f"{root}/#")
        # A unit asks for the floor as the command center, writes floor state, acks alerts:
        unit.publish(topics.tg_floor_request("g1", "command-center", root), b'{"forged": 1}', qos=1)
        unit.publish(topics.tg_floor_state("g1", root), b'{"forged": 2}', qos=1)
        unit.publish(topics.alert_ack(unit_id, root), b'{"forged": 3}', qos=1)
        # The kiosk app speaks as the unit's assistant (markup for the screen) or its status:
        kiosk.publish(topics.assistant_event(unit_id, root), b'{"forged": 4}', qos=1)
        kiosk.publish(topics.unit_status(unit_id, root), b'{"forged": 5}', qos=1)
        # Watch may only read.
        watch.publish(topics.alert(unit_id, root), b'{"forged": 6}', qos=1)
        # What each may do passes.
        unit.publish(topics.tg_floor_request("g1", unit_id, root), b'{"own": 1}', qos=1)
        kiosk.publish(topics.assistant_command(unit_id, root), b'{"own": 2}', qos=1)
        hub.publish(topics.tg_floor_request("g1", "command-center", root), b'{"own": 3}', qos=1)
        payloads = [m.payload for m in _heard(watch) if not m.retain]
        assert not [p for p in payloads if b"forged" in p], payloads
        assert sorted(p for p in payloads if b"own" in p) == [b'{"own": 1}', b'{"own": 2}', b'{"own": 3}']
    finally:
        for c in (watch, unit, kiosk, hub):
            c.close()


def test_posko_ptt_and_doctor_find_their_login_in_the_state_dir(dev_broker) -> None:
    settings, _text = dev_broker
    unit_login = with_dev_login(settings, settings.posko.unit_id)
    assert unit_login.mqtt.username == settings.posko.unit_id and unit_login.mqtt.password
    from posko.doctor import run_checks

    checks = {c.name: c for c in run_checks(settings)}
    assert checks["broker"].status == "ok", checks["broker"]
    configured = load_settings(None, environ={"POSKO_POSKO_STATE_DIR": str(settings.state_dir),
                                              "POSKO_MQTT_USERNAME": "someone"})
    assert with_dev_login(configured, "watch").mqtt.username == "someone"  # a configured login wins
