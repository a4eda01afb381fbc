"""A subscription the broker's ACL refuses is not silent: the unit's heartbeat lists it
(`parts.agent.mqtt_refused`), its status LED blinks, and `posko doctor` fails on it,
reading the retained heartbeat from the local broker."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from firmware.agent import Agent
from firmware.panel import NoPanel
from posko import topics
from posko.broker import free_port
from posko.config import load_settings
from posko.doctor import FAIL, OK, check_subscriptions
from posko.messages import Heartbeat
from tests.support.mqtt import Client

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

ROOT = "posko/v1"
UNIT = "kiosk-acl-1"


class Subscriber:
    """A unit component that subscribes to one pattern (as the voice or PTT parts do)."""

    name = "probe"

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def start(self, ctx) -> None:
        ctx.link.subscribe(self.pattern, lambda topic, payload: None, qos=1)

    def stop(self) -> None:
        pass

    def status(self) -> dict:
        return {}


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory):
    """A Mosquitto whose ACL lets the unit subscribe and publish under its own id alone.
    The dynamic-security plugin, because an acl_file never refuses a subscription (it
    only withholds the messages): the refusal is a real SUBACK failure."""
    import json
    import shutil
    import subprocess

    from posko.broker import BrokerConfig, MosquittoProcess

    plugin = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
    if not Path(plugin).exists() or not shutil.which("mosquitto_ctrl"):
        pytest.skip("Mosquitto's dynamic-security plugin is not installed")
    folder = tmp_path_factory.mktemp("dynsec")
    conf = folder / "dynsec.json"
    subprocess.run(["mosquitto_ctrl", "dynsec", "init", str(conf), UNIT, "pw-unit"], check=True,
                   capture_output=True)
    data = json.loads(conf.read_text())
    own = f"{ROOT}/unit/{UNIT}/#"
    for role in data["roles"]:
        role["acls"] = [a for a in role["acls"] if a["topic"] != "#"] + [
            {"acltype": "subscribePattern", "topic": own, "allow": True},
            {"acltype": "publishClientSend", "topic": own, "allow": True},
            {"acltype": "publishClientReceive", "topic": own, "allow": True}]
    conf.write_text(json.dumps(data))
    proc = MosquittoProcess(BrokerConfig(state_dir=folder, port=free_port(), allow_anonymous=False,
                                         extra_lines=(f"plugin {plugin}", f"plugin_opt_config_file {conf}"))).start()
    try:
        yield proc
    finally:
        proc.stop()


def _settings(tmp_path: Path, port: int):
    return load_settings(None, environ={
        "POSKO_POSKO_STATE_DIR": str(tmp_path / "var"), "POSKO_POSKO_UNIT_ID": UNIT,
        "POSKO_MQTT_PORT": str(port), "POSKO_MQTT_USERNAME": UNIT, "POSKO_MQTT_PASSWORD": "pw-unit",
        "POSKO_KIOSK_PORT": str(free_port()), "POSKO_UNIT_HEARTBEAT_S": "2"})


def _run_agent(settings, pattern: str):
    agent = Agent(settings, components=[Subscriber(pattern)], panel=NoPanel())
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    return agent, thread


def _beat(watch: Client, predicate, timeout: float = 15.0) -> Heartbeat:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = watch.expect(max(0.1, deadline - time.monotonic()))
        if msg.payload:
            beat = Heartbeat.from_json(msg.payload)
            if beat.state == "online" and predicate(beat):
                return beat
    raise AssertionError("no such heartbeat")


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "granted"])
def test_a_refused_subscription_shows_in_the_heartbeat_and_in_doctor(acl_broker, tmp_path, allowed) -> None:
    settings = _settings(tmp_path, acl_broker.port)
    # Another unit's commands: the ACL lets a unit read only its own.
    other = topics.assistant_command("kiosk-someone-else", ROOT)
    own = topics.assistant_command(UNIT, ROOT)
    watch = Client(acl_broker.port, username=UNIT, password="pw-unit")
    assert watch.wait_connected()
    watch.subscribe(topics.unit_status(UNIT, ROOT))
    agent, thread = _run_agent(settings, own if allowed else other)
    try:
        # The SUBACK may come after the first heartbeat: wait for a later one.
        beat = _beat(watch, lambda b: "agent" in b.parts and (b.parts["agent"]["mqtt_refused"] or b.uptime_s > 3))
        refused = beat.parts["agent"]["mqtt_refused"]
        check = check_subscriptions(settings)
        if allowed:
            assert refused == {} and check.status == OK, check
            assert "mqtt_acl" not in beat.parts["agent"]["problems"]
        else:
            assert list(refused) == [other]
            assert "mqtt_acl" in beat.parts["agent"]["problems"]  # the status LED blinks
            assert check.status == FAIL and other in check.detail and "ACL" in check.fix
    finally:
        agent.stop()
        thread.join(10)
        watch.close()


def test_doctor_says_so_when_the_unit_agent_is_not_running(acl_broker, tmp_path) -> None:
    settings = _settings(tmp_path, acl_broker.port)
    settings = load_settings(None, environ={
        "POSKO_POSKO_STATE_DIR": str(tmp_path / "var"), "POSKO_POSKO_UNIT_ID": f"kiosk-{uuid.uuid4().hex[:6]}",
        "POSKO_MQTT_PORT": str(acl_broker.port), "POSKO_MQTT_USERNAME": UNIT,
        "POSKO_MQTT_PASSWORD": "pw-unit"})
    check = check_subscriptions(settings)  # its own status topic is another unit's here: refused
    assert check.status == FAIL and "refused doctor's subscription" in check.detail
