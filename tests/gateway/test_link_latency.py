"""Small messages that follow each other are not held back by Nagle's algorithm (TCP_NODELAY
on every client socket), and a talker gets none of its own audio back (No Local)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from tests.gateway.conftest import ListSource, tone_frames, wait_until
from tests.support.tcpproxy import TcpProxy

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


def test_a_grant_right_after_another_groups_grant_is_not_held_for_a_delayed_ack(net) -> None:
    """Issue 18: a grant in group B 10 ms after one in group A took 42-44 ms instead of ~1 ms,
    waiting for the delayed ACK of the message before it (the arbiter's PUBACK of request A,
held back by Nagle until the broker ACKs... which it delays)."""
    net.arbiter()
    a = net.unit("dewi", lambda: ListSource(tone_frames(0.2)), group="g-a")
    b = net.unit("ojol-base", lambda: ListSource(tone_frames(0.2)), group="g-b")
    second = []
    for i in range(24):
        a.client.press()
        time.sleep(0.010)
        b.client.press()
        assert wait_until(lambda n=i: len(b.seen("grant")) > n and len(a.seen("grant")) > n, 3)
        second.append(b.seen("grant")[i]["grant_ms"])
        assert wait_until(lambda n=i: len(a.seen("tx_end")) > n and len(b.seen("tx_end")) > n, 3)
        a.client.release()
        b.client.release()
        time.sleep(0.3)
    # ~40 ms each without TCP_NODELAY; a few ms with it (20 leaves room for a busy machine).
    # Without TCP_NODELAY about a third of them wait for the delayed ACK (42-47 ms here);
    # with it they take 1-12 ms. Two slow ones are allowed for a busy machine.
    slow = [ms for ms in second if ms > 35]
    assert len(slow) <= 2, second


def test_a_talkers_connection_carries_none_of_its_own_audio_back(net) -> None:
    """Issue 18: a talker received its own audio back (36.8 kbit/s) for nothing. Counted in
    bytes on the wire with a proxy in front of the talker's broker connection."""
    net.arbiter()
    proxy = TcpProxy(net.mqtt.port)
    try:
        via_proxy = dataclasses.replace(net.mqtt, port=proxy.port)
        dewi = net.unit("dewi", lambda: ListSource(tone_frames(2.0)), mqtt=via_proxy)
        listener = net.unit("pos-2")
        time.sleep(0.3)
        before = proxy.bytes_down
        dewi.client.press()
        assert wait_until(lambda: dewi.seen("tx_end"), 6)
        down = proxy.bytes_down - before
        sent = sum(e["bytes"] + 12 for e in dewi.seen("tx"))
        assert len(dewi.seen("tx")) >= 95 and wait_until(lambda: listener.seen("rx_end"), 3)
        # What still comes down: the floor state twice and PUBACKs (~300 bytes); with its
        # own audio it was twice what it sent (11 kB for 5.5 kB of frames in these 2 s).
        assert down < 1500, (down, sent)
        assert dewi.client.counters.own_frames == 0
    finally:
        proxy.close()
