"""posko.mqtt.MqttLink against a real broker: delivery, re-subscribe after restart, last-will."""

from __future__ import annotations

import queue
import time

import pytest

from posko.mqtt import MqttLink, Will
from posko.settings.core import MqttSettings

pytestmark = pytest.mark.broker


def test_link_receives_and_resubscribes_after_broker_restart(broker_factory, mqtt_client) -> None:
    broker = broker_factory()
    got: queue.Queue = queue.Queue()
    link = MqttLink(MqttSettings(port=broker.port, keepalive_s=5), reconnect_max_s=0.5)
    link.subscribe("posko/v1/x/#", lambda t, p: got.put((t, p)))
    link.start()
    try:
        assert link.wait_connected(5)
        link.publish("posko/v1/x/1", b"a", qos=1).wait_for_publish(5)
        assert got.get(timeout=5) == ("posko/v1/x/1", b"a")

        broker.process.restart(down_s=0.5)
        deadline = time.monotonic() + 10
        while not link.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert link.connected.is_set(), "link did not reconnect"
        link.publish("posko/v1/x/2", b"b", qos=1).wait_for_publish(5)
        assert got.get(timeout=5) == ("posko/v1/x/2", b"b")
    finally:
        link.stop()


def test_link_last_will_is_published_when_it_vanishes(broker, mqtt_client, topic_prefix) -> None:
    watcher = mqtt_client()
    watcher.subscribe(f"{topic_prefix}/unit/u9/status")
    link = MqttLink(MqttSettings(port=broker.port, keepalive_s=5),
                    will=Will(f"{topic_prefix}/unit/u9/status", b"offline"))
    link.start()
    assert link.wait_connected(5)
    # Simulate a crash: close the socket without DISCONNECT.
    link._client.socket().close()
    link._client.loop_stop()
    msg = watcher.expect(timeout=15)
    assert msg.payload == b"offline"


def test_handler_exception_does_not_stop_delivery(broker, topic_prefix) -> None:
    got: queue.Queue = queue.Queue()
    link = MqttLink(MqttSettings(port=broker.port))

    def handler(topic: str, payload: bytes) -> None:
        if payload == b"boom":
            raise RuntimeError("bad message")
        got.put(payload)

    link.subscribe(f"{topic_prefix}/#", handler)
    link.start()
    try:
        assert link.wait_connected(5)
        link.publish(f"{topic_prefix}/a", b"boom", qos=1).wait_for_publish(5)
        link.publish(f"{topic_prefix}/a", b"ok", qos=1).wait_for_publish(5)
        assert got.get(timeout=5) == b"ok"
    finally:
        link.stop()
