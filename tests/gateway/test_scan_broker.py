"""Scan on the real broker: two talkers in two groups, one unit scanning both; and the
generated ACL letting a unit hear only the groups it is a member of."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.acl import render_acl
from posko import topics
from tests.gateway.conftest import ListSource, TimedSink, tone_frames, wait_until
from tests.gateway.test_scan import HI_HZ, LO_HZ, classify
from tests.support.mqtt import Client

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_a_higher_group_preempts_the_lower_within_100_ms_and_the_lower_resumes(net, ptt_settings) -> None:
    arb = net.arbiter()
    ptt = dataclasses.replace(ptt_settings, groups=["lo", "hi"])
    lo = net.unit("lo-talker", lambda: ListSource(tone_frames(3.0, LO_HZ)), group="lo")
    hi = net.unit("hi-talker", lambda: ListSource(tone_frames(0.8, HI_HZ)), group="hi")
    sink = TimedSink()
    me = net.unit("scanner", group="lo", ptt=ptt, scan=["hi", "lo"], sink=sink)
    assert me.client.groups == ("hi", "lo")
    lo.client.press()
    assert wait_until(lambda: any(classify(f) == "L" for f in list(sink.frames)), 3)
    assert wait_until(lambda: lo.seen("tx") and len(lo.seen("tx")) > 25, 3)  # ~0.5 s of lo heard
    hi.client.press()
    assert wait_until(lambda: hi.seen("tx_end"), 5)
    assert wait_until(lambda: lo.seen("tx_end"), 5)
    assert wait_until(lambda: me.seen("rx_end") and len(me.seen("rx_end")) >= 2, 3)
    lo.client.release()
    hi.client.release()

    frames, times = list(sink.frames), list(sink.times)
    heard = "".join(classify(f) for f in frames)
    first_hi_rx = min(e["t"] for e in me.seen("rx") if e["group"] == "hi")
    first_h = heard.index("H")
    last_h = heard.rindex("H")
    preempt_ms = (times[first_h] - first_hi_rx) * 1000
    stop_l = heard.rindex("L", 0, first_h)
    print(f"pre-emption: lo silenced {(times[stop_l] - first_hi_rx) * 1000:.0f} ms, "
          f"hi heard {preempt_ms:.0f} ms after hi's first frame reached the unit")
    assert preempt_ms <= 100
    assert (times[stop_l] - first_hi_rx) * 1000 <= 100
    assert "L" not in heard[first_h:last_h]  # nothing of lo while hi talks
    assert heard[first_h:last_h + 1].count("H") >= 35  # most of hi's 0.8 s (40 frames)
    resumed = heard.index("L", last_h)  # lo's spurt was still running: it is heard again
    assert (times[resumed] - times[last_h]) * 1000 <= 300  # after hi's roger beep
    assert heard[resumed:].count("L") >= 20
    assert me.client.counters.scan_preemptions == 1
    assert [e["why"] for e in me.seen("scan")][:3] == ["start", "preempt", "resume"]
    # Scanning changes what is heard, not where the unit talks.
    assert me.client.group == "lo" and me.client.status()["scan"] == ["hi", "lo"]
    assert wait_until(lambda: arb.status()["groups"].get("lo", "") == "", 3)
    me.client.press()
    assert wait_until(lambda: arb.status()["groups"].get("lo") == "scanner", 3)
    assert arb.status()["groups"].get("hi", "") == ""
    me.client.release()


def test_a_unit_that_does_not_scan_hears_only_its_group(net) -> None:
    net.arbiter()
    hi = net.unit("hi-talker", lambda: ListSource(tone_frames(0.5, HI_HZ)), group="hi")
    me = net.unit("plain", group="lo")
    hi.client.press()
    assert wait_until(lambda: hi.seen("tx_end"), 4)
    hi.client.release()
    assert not wait_until(lambda: me.seen("rx"), 0.5)
    assert "H" not in "".join(classify(f) for f in me.sink.frames)


USERS = {"scanner": "pw-s", "talker": "pw-t", "arbiter": "pw-arb", "hub": "pw-hub",
         "command-center": "pw-cc"}


def test_the_acl_lets_a_unit_hear_its_member_groups_only(broker_factory) -> None:
    root = "scanacl/posko/v1"
    acl = render_acl(root, members={"scanner": ["hi", "lo"], "talker": ["hi", "lo", "other"]},
                     talk_everywhere=["command-center"])
    assert "topic read scanacl/posko/v1/tg/hi/audio/+" in acl
    assert "pattern read scanacl/posko/v1/tg/+/audio/+" not in acl
    assert "pattern read scanacl/posko/v1/tg/+/audio/+" in render_acl(root)  # no membership: all
    broker = broker_factory(users=USERS, acl=acl)
    scanner = Client(broker.port, username="scanner", password="pw-s")
    console = Client(broker.port, username="command-center", password="pw-cc")
    talker = Client(broker.port, username="talker", password="pw-t")
    try:
        assert scanner.wait_connected() and talker.wait_connected() and console.wait_connected()
        for group in ("hi", "lo", "other"):
            scanner.subscribe(topics.group_audio(group, root))
            scanner.subscribe(topics.tg_floor_state(group, root))
        console.subscribe(f"{root}/tg/+/audio/+")
        for group in ("other", "hi", "lo"):
            talker.publish(topics.tg_audio(group, "talker", root), group.encode(), qos=1)
        got = sorted(scanner.expect(3).payload for _ in range(2))
        assert got == [b"hi", b"lo"]
        with pytest.raises(AssertionError):
            scanner.expect(0.5)  # nothing of "other", which it is not a member of
        assert sorted(console.expect(3).payload for _ in range(3)) == [b"hi", b"lo", b"other"]
    finally:
        for c in (scanner, console, talker):
            c.close()
