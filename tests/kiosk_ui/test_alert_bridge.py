""""Sent" over MQTT means the broker bridge has it: a real unit broker bridged to a real
central broker (Mosquitto's $SYS bridge notifications), and no hub over HTTP at all."""

from __future__ import annotations

import time

import pytest
import requests

from posko import topics
from posko.messages import Alert

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def wait(predicate, timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)


def test_an_alert_counts_as_sent_only_while_the_bridge_is_up(serve_kiosk, broker_factory, mqtt_client,
                                                               topic_prefix) -> None:
    central = broker_factory()
    unit_broker = broker_factory(bridge_to=central, bridge_topics=(f"{topic_prefix}/# both 1",))
    unit = "kiosk-bridge-1"
    kiosk = serve_kiosk(env={"POSKO_MQTT_PORT": str(unit_broker.port), "POSKO_MQTT_TOPIC_ROOT": topic_prefix,
                             "POSKO_POSKO_UNIT_ID": unit, "POSKO_KIOSK_ALERT_RETRY_S": "0.3"},
                        START_MQTT=True)  # the hub's HTTP URL answers nothing
    bus = kiosk.kiosk.bus
    assert bus.link.wait_connected(5)
    wait(lambda: bus.bridge_up, what="the bridge state from $SYS")
    hub_side = mqtt_client(port=central.port)
    hub_side.subscribe(topics.alert(unit, topic_prefix))

    first = requests.post(kiosk.url + "/api/darurat", timeout=10).json()["alert"]
    box = kiosk.kiosk.alerts
    wait(lambda: box.get(first["alert_id"]).sent_at is not None, what="sent via the bridge")
    rec = box.get(first["alert_id"])
    assert rec.sent_via == "bridge" and rec.hub_at is None
    assert Alert.from_json(hub_side.expect(10).payload).id == first["alert_id"]  # it did cross

    central.process.stop()  # the uplink dies: the bridge goes down
    wait(lambda: not bus.bridge_up, timeout_s=30, what="the bridge reported down")
    second = requests.post(kiosk.url + "/api/darurat", timeout=10).json()["alert"]
    time.sleep(2.0)
    assert second["state"] == "not_sent" and box.get(second["alert_id"]).sent_at is None
    assert requests.get(kiosk.url + f"/api/alerts/{second['alert_id']}", timeout=10).json()["state"] == "not_sent"
