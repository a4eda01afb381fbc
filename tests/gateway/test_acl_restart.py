"""The generated ACL on a real broker, and recovery after a broker restart."""

from __future__ import annotations

import dataclasses
import time

import pytest

from gateway.acl import render_acl
from gateway.arbiter import Arbiter
from posko import topics
from posko.settings.core import MqttSettings
from tests.gateway.conftest import ListSource, tone_frames, wait_until
from tests.support.mqtt import Client

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

USERS = {"unit-a": "pw-a", "unit-b": "pw-b", "arbiter": "pw-arb", "hub": "pw-hub"}


@pytest.fixture(scope="module")
def acl_broker(broker_factory):
    root = "acl/posko/v1"
    return broker_factory(users=USERS, acl=render_acl(root, arbiter_user="arbiter", hub_user="hub")), root


def test_a_unit_cannot_publish_under_another_units_id(acl_broker) -> None:
    broker, root = acl_broker
    observer = Client(broker.port, username="arbiter", password="pw-arb")
    unit_a = Client(broker.port, username="unit-a", password="pw-a")
    try:
        assert observer.wait_connected() and unit_a.wait_connected()
        observer.subscribe(f"{root}/tg/#")
        forged = [topics.tg_audio("g1", "unit-b", root), topics.tg_floor_request("g1", "unit-b", root),
                  topics.tg_floor_state("g1", root)]
        for topic in forged:
            unit_a.publish(topic, b"forged", qos=1)
        own = topics.tg_audio("g1", "unit-a", root)
        unit_a.publish(own, b"mine", qos=1)
        first = observer.expect(3)
        assert (first.topic, first.payload) == (own, b"mine")  # the forged ones never arrived
        with pytest.raises(AssertionError):
            observer.expect(0.5)
        # Its own floor request passes too, and the arbiter may write floor state.
        unit_a.publish(topics.tg_floor_request("g1", "unit-a", root), b"{}", qos=1)
        assert observer.expect(3).topic == topics.tg_floor_request("g1", "unit-a", root)
        observer.publish(topics.tg_floor_state("g1", root), b"{}", qos=1)
        assert observer.expect(3).topic == topics.tg_floor_state("g1", root)
    finally:
        observer.close()
        unit_a.close()


def test_only_own_credentials_get_in(acl_broker) -> None:
    broker, _root = acl_broker
    for user, password in (("unit-a", "pw-b"), ("unit-b", "pw-a"), ("unit-a", ""), (None, None)):
        client = Client(broker.port, username=user, password=password)
        try:
            assert not client.wait_connected(3), f"{user!r} with a wrong password got in"
        finally:
            client.close()


def test_membership_limits_talking_to_own_groups() -> None:
    text = render_acl("posko/v1", members={"unit-a": ["batang-kota"]})
    assert "topic write posko/v1/tg/batang-kota/audio/unit-a" in text
    assert "pattern write posko/v1/tg/+/audio/%u" not in text
    with pytest.raises(ValueError):
        render_acl("posko/v1", members={"unit/#": ["g"]})


@pytest.mark.slow
def test_units_are_back_in_service_within_five_seconds_of_a_broker_restart(broker_factory, tmp_path, net) -> None:
    running = broker_factory()
    mqtt = MqttSettings(port=running.port, topic_root="restart/posko/v1", keepalive_s=5)
    arb = Arbiter(mqtt, net.ptt, tmp_path / "rec").start()
    net.stoppers.append(arb.stop)
    assert arb.link.wait_connected(5)
    net.mqtt = mqtt
    dewi = net.unit("dewi", lambda: ListSource(tone_frames(0.5)))
    pos2 = net.unit("pos-2")
    dewi.client.press()
    assert wait_until(lambda: pos2.seen("rx_end"), 5)

    running.process.stop()
    assert wait_until(lambda: not dewi.link.connected.is_set() and not arb.link.connected.is_set(), 5)
    assert dewi.client.status()["mode"] == "offline"
    time.sleep(1.0)  # down for a while, as during an update
    running.process.start()
    back = time.monotonic()

    def in_service() -> bool:
        return (dewi.client.status()["mode"] == "arbiter" and pos2.link.connected.is_set()
                and arb.link.connected.is_set())

    assert wait_until(in_service, 5), dewi.client.status()
    heard = pos2.client.counters.spurts_heard
    dewi.client.press()
    assert wait_until(lambda: pos2.client.counters.spurts_heard == heard + 1, 5)
    assert wait_until(lambda: len(dewi.seen("grant")) == 2, 1)
    took = dewi.seen("grant")[-1]["t"] - (time.time() - (time.monotonic() - back))
    assert took <= 5.0, f"back in service after {took:.1f} s"
    assert dataclasses.asdict(dewi.client.counters)["cuts"] == 0
