"""posko.mqtt.MqttLink against a real broker: delivery, re-subscribe after restart, last-will."""

from __future__ import annotations

import queue
import time
from pathlib import Path

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


def _collect(watcher, n: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
    return [(m.topic, m.payload) for m in (watcher.expect(timeout=timeout) for _ in range(n))]


def test_stream_publish_names_the_topic_once_then_sends_the_alias(broker, mqtt_client, topic_prefix) -> None:
    from tests.support.tcpproxy import TcpProxy

    topic = f"{topic_prefix}/tg/patroli-utara/audio/unit-pos-kuta-01"
    watcher = mqtt_client()
    watcher.subscribe(f"{topic_prefix}/tg/#", qos=0)
    proxy = TcpProxy(broker.port)
    link = MqttLink(MqttSettings(port=proxy.port))
    link.start()
    try:
        assert link.wait_connected(5)
        time.sleep(0.2)
        before = proxy.bytes_up
        frames = [bytes([i]) * 40 for i in range(100)]
        for payload in frames:
            link.publish_stream(topic, payload)
        # Every subscriber still sees the whole topic name, in order.
        assert _collect(watcher, 100) == [(topic, p) for p in frames]
        sent = proxy.bytes_up - before
        # 100 × (40 bytes + at most 10 of framing and alias) plus the topic once; with
        # the topic name in every PUBLISH it would be 100 × (40 + 2 + len(topic) + ...).
        assert sent <= 100 * 50 + len(topic) + 10, sent
        assert sent >= 100 * 40
    finally:
        link.stop()
        proxy.close()


def test_stream_aliases_are_forgotten_when_the_broker_restarts(broker_factory, topic_prefix) -> None:
    from tests.support.mqtt import Client

    broker = broker_factory()
    topic = f"{topic_prefix}/tg/g1/audio/u1"
    link = MqttLink(MqttSettings(port=broker.port, keepalive_s=5), reconnect_max_s=0.5)
    link.start()
    watchers = []
    try:
        assert link.wait_connected(5)
        for phase in ("before", "after"):
            if phase == "after":
                broker.process.restart(down_s=0.5)
                time.sleep(0.3)
                deadline = time.monotonic() + 10
                while not link.connected.is_set() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert link.connected.is_set(), "link did not reconnect"
            watcher = Client(broker.port)
            watchers.append(watcher)
            assert watcher.wait_connected(5)
            watcher.subscribe(f"{topic_prefix}/#", qos=0)
            # After the restart a stale alias would be unknown to the new broker: it would
            # drop the connection and the messages. The first message names the topic again.
            for i in range(3):
                link.publish_stream(topic, f"{phase}{i}".encode())
            assert _collect(watcher, 3) == [(topic, f"{phase}{i}".encode()) for i in range(3)]
        assert link.connected.is_set()
    finally:
        link.stop()
        for watcher in watchers:
            watcher.close()


def test_stream_publish_without_aliases_when_the_broker_allows_none(broker, mqtt_client, topic_prefix) -> None:
    topic = f"{topic_prefix}/tg/g1/audio/u2"
    watcher = mqtt_client()
    watcher.subscribe(f"{topic_prefix}/#", qos=0)
    link = MqttLink(MqttSettings(port=broker.port))
    link.start()
    try:
        assert link.wait_connected(5)
        link._forget_aliases(0)  # what a CONNACK without Topic Alias Maximum leaves
        for i in range(3):
            link.publish_stream(topic, b"m%d" % i)
        assert _collect(watcher, 3) == [(topic, b"m%d" % i) for i in range(3)]
        assert link._aliases == {}
    finally:
        link.stop()


def _dynsec_broker(tmp_path):
    """A Mosquitto with the dynamic-security plugin whose only client may subscribe to
    posko/v1/allowed/# alone (an acl_file never refuses a subscription; dynsec does)."""
    import json
    import shutil
    import subprocess

    from posko.broker import BrokerConfig, MosquittoProcess, free_port

    plugin = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
    if not Path(plugin).exists() or not shutil.which("mosquitto_ctrl"):
        pytest.skip("Mosquitto's dynamic-security plugin is not installed")
    conf = tmp_path / "dynsec.json"
    subprocess.run(["mosquitto_ctrl", "dynsec", "init", str(conf), "u1", "pw1"], check=True,
                   capture_output=True)
    data = json.loads(conf.read_text())
    for role in data["roles"]:
        role["acls"] = [a for a in role["acls"] if a["topic"] != "#"] + [
            {"acltype": "subscribePattern", "topic": "posko/v1/allowed/#", "allow": True},
            {"acltype": "publishClientReceive", "topic": "posko/v1/allowed/#", "allow": True}]
    conf.write_text(json.dumps(data))
    config = BrokerConfig(state_dir=tmp_path, port=free_port(), allow_anonymous=False,
                          extra_lines=(f"plugin {plugin}", f"plugin_opt_config_file {conf}"))
    return MosquittoProcess(config).start()


def test_a_subscription_the_broker_refuses_is_reported_not_silent(tmp_path, caplog) -> None:
    broker = _dynsec_broker(tmp_path)
    link = MqttLink(MqttSettings(port=broker.config.port, username="u1", password="pw1",
                                 keepalive_s=5), client_id="u1")
    link.subscribe("posko/v1/allowed/#", lambda t, p: None)
    link.subscribe("posko/v1/secret/#", lambda t, p: None)
    link.start()
    try:
        assert link.wait_connected(5)
        assert link.wait_subscribed("posko/v1/allowed/#", 5)
        assert link.wait_subscribed("posko/v1/secret/#", 5) is False
        assert set(link.refused) == {"posko/v1/secret/#"}
        assert "REFUSED the subscription posko/v1/secret/#" in caplog.text
        # A subscription made after the connect is checked as well.
        link.subscribe("posko/v1/other/#", lambda t, p: None)
        assert link.wait_subscribed("posko/v1/other/#", 5) is False
        assert set(link.refused) == {"posko/v1/secret/#", "posko/v1/other/#"}
    finally:
        link.stop()
        broker.stop()


def test_every_link_socket_sends_at_once_without_nagle(broker) -> None:
    """TCP_NODELAY: a small message after another is not held for the peer's delayed ACK."""
    import socket

    threaded = MqttLink(MqttSettings(port=broker.port)).start()
    polled = MqttLink(MqttSettings(port=broker.port))
    try:
        assert threaded.wait_connected(5)
        client = polled.start_polled()
        for sock in (threaded._client.socket(), client.socket()):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        threaded.stop()
        polled.stop()


def test_no_local_keeps_a_links_own_messages_from_it(broker, topic_prefix) -> None:
    own: queue.Queue = queue.Queue()
    echo: queue.Queue = queue.Queue()
    other: queue.Queue = queue.Queue()
    talker = MqttLink(MqttSettings(port=broker.port))
    plain = MqttLink(MqttSettings(port=broker.port))
    listener = MqttLink(MqttSettings(port=broker.port))
    talker.subscribe(f"{topic_prefix}/a/#", lambda t, p: own.put(p), qos=0, no_local=True)
    plain.subscribe(f"{topic_prefix}/a/#", lambda t, p: echo.put(p), qos=0)
    listener.subscribe(f"{topic_prefix}/a/#", lambda t, p: other.put(p), qos=0)
    links = (talker, plain, listener)
    try:
        for link in links:
            link.start()
            assert link.wait_connected(5) and link.wait_subscribed(f"{topic_prefix}/a/#", 5)
        for i in range(5):
            talker.publish(f"{topic_prefix}/a/x", b"t%d" % i, qos=1).wait_for_publish(5)
            plain.publish(f"{topic_prefix}/a/x", b"p%d" % i, qos=1).wait_for_publish(5)
        got = sorted(other.get(timeout=5) for _ in range(10))
        assert got == sorted([b"t%d" % i for i in range(5)] + [b"p%d" % i for i in range(5)])
        time.sleep(0.3)
        heard_by_talker = []
        while not own.empty():
            heard_by_talker.append(own.get())
        assert heard_by_talker == [b"p%d" % i for i in range(5)]  # others' yes, its own no
        assert echo.qsize() == 10  # without No Local a link hears itself too
    finally:
        for link in links:
            link.stop()
