"""The floor policy and listen-before-talk, fed with numbers."""

from __future__ import annotations

import pytest

from gateway.floor import Event, FloorPolicy, LbtVerdict, ListenBeforeTalk, Priority

N, S, C, E = Priority.NORMAL, Priority.SUPERVISOR, Priority.COMMAND, Priority.EMERGENCY


def test_first_come_first_served() -> None:
    floor = FloorPolicy()
    first = floor.request("dewi", N, 1, now_ms=0)
    second = floor.request("ojol-base", N, 2, now_ms=5)
    assert first.event is Event.GRANT and first.holder.unit == "dewi"
    assert second.event is Event.DENY and second.unit == "ojol-base"
    assert floor.holder.unit == "dewi"


def test_release_frees_the_floor_for_the_next() -> None:
    floor = FloorPolicy()
    floor.request("dewi", N, 1, 0)
    assert floor.release("ojol-base", 0, 10) is None  # not the holder: nothing happens
    assert floor.release("dewi", 999, 10) is None  # another spurt of hers: nothing happens
    released = floor.release("dewi", 1, 20)
    assert released.event is Event.RELEASE and floor.holder is None
    assert floor.request("ojol-base", N, 2, 30).event is Event.GRANT


def test_higher_priority_preempts_and_names_the_cut_holder() -> None:
    floor = FloorPolicy()
    floor.request("dewi", N, 1, 0)
    d = floor.request("command-center", C, 7, 100)
    assert d.event is Event.PREEMPT
    assert d.cut.unit == "dewi" and d.holder.unit == "command-center"
    # An equal priority never pre-empts.
    assert floor.request("polda", C, 8, 150).event is Event.DENY
    # Nor does a lower one.
    assert floor.request("sup", S, 9, 160).event is Event.DENY


def test_priority_order_and_parse() -> None:
    assert N < S < C < E
    assert Priority.parse("emergency") is E and E.name.lower() == "emergency"  # its own value
    assert Priority.parse("command") is C
    with pytest.raises(ValueError, match="priority must be one of"):
        Priority.parse("boss")


def test_an_emergency_preempts_the_command_center_and_nothing_preempts_it() -> None:
    floor = FloorPolicy()
    floor.request("command-center", C, 1, 0)
    d = floor.request("ojol-base", E, 2, 50)
    assert d.event is Event.PREEMPT and d.cut.unit == "command-center"
    assert d.holder.priority is E
    assert floor.request("command-center", C, 3, 60).event is Event.DENY
    assert floor.request("polda", E, 4, 70).event is Event.DENY  # first emergency keeps it


def test_a_silent_emergency_holder_is_released_but_the_command_center_is_not() -> None:
    """Nothing pre-empts an emergency, so a silent one (a rogue unit's claim) must not hold
    a group, the dispatcher's included, for the whole maximum hold."""
    floor = FloorPolicy(silence_release_ms=2000, max_hold_ms=65000)
    floor.request("ojol-base", E, 1, 0)
    assert floor.tick(1999) is None
    assert floor.tick(2000).event is Event.SILENCE
    floor.request("command-center", C, 2, 3000)
    assert floor.tick(10000) is None  # the dashboard may hold a group quiet
    assert floor.request("ojol-base", E, 3, 10001).event is Event.PREEMPT  # back at once


def test_silent_holder_loses_the_floor_after_two_seconds() -> None:
    floor = FloorPolicy(silence_release_ms=2000)
    floor.request("dewi", N, 1, 0)
    for t in range(20, 1000, 20):
        assert floor.audio("dewi", 1, t)
        assert floor.tick(t) is None
    assert floor.tick(2979) is None
    d = floor.tick(2980)
    assert d.event is Event.SILENCE and d.unit == "dewi" and floor.holder is None


def test_granted_but_never_talking_also_times_out() -> None:
    floor = FloorPolicy(silence_release_ms=2000)
    floor.request("dewi", N, 1, 1000)
    assert floor.tick(2999) is None
    assert floor.tick(3000).event is Event.SILENCE


def test_audio_from_a_non_holder_does_not_keep_the_floor() -> None:
    floor = FloorPolicy(silence_release_ms=2000)
    floor.request("dewi", N, 1, 0)
    assert not floor.audio("intruder", 1, 1000)
    assert not floor.audio("dewi", 2, 1000)  # right unit, wrong spurt
    assert floor.tick(2000).event is Event.SILENCE


def test_max_hold_cuts_a_talker_who_never_stops() -> None:
    floor = FloorPolicy(silence_release_ms=2000, max_hold_ms=65000)
    floor.request("jammed", N, 1, 0)
    t = 0
    while t < 65000:
        floor.audio("jammed", 1, t)
        assert floor.tick(t) is None
        t += 20
    assert floor.tick(65000).event is Event.TIMEOUT


def test_last_will_releases_only_the_holder() -> None:
    floor = FloorPolicy()
    floor.request("dewi", N, 1, 0)
    assert floor.offline("ojol-base", 10) is None
    d = floor.offline("dewi", 10)
    assert d.event is Event.OFFLINE and floor.holder is None


def test_holder_asking_again_is_granted_again() -> None:
    floor = FloorPolicy()
    floor.request("dewi", N, 1, 0)
    assert floor.request("dewi", N, 2, 10).event is Event.GRANT
    assert floor.holder.spurt == 2


def test_lbt_grants_after_quiet_period_from_the_press() -> None:
    lbt = ListenBeforeTalk(500)
    lbt.press(1000)
    assert lbt.decide(1000) is LbtVerdict.WAIT
    assert lbt.decide(1499) is LbtVerdict.WAIT
    assert lbt.decide(1500) is LbtVerdict.GRANT


def test_lbt_busy_when_someone_talks_during_or_just_before() -> None:
    lbt = ListenBeforeTalk(500)
    lbt.heard(800)
    lbt.press(1000)
    assert lbt.decide(1000) is LbtVerdict.BUSY
    lbt2 = ListenBeforeTalk(500)
    lbt2.heard(100)
    lbt2.press(1000)
    assert lbt2.decide(1200) is LbtVerdict.WAIT
    lbt2.heard(1300)
    assert lbt2.decide(1310) is LbtVerdict.BUSY


def test_lbt_needs_a_press() -> None:
    with pytest.raises(RuntimeError):
        ListenBeforeTalk().decide(0)


def test_command_center_may_hold_the_floor_quiet_until_max_hold() -> None:
    floor = FloorPolicy(silence_release_ms=2000, max_hold_ms=65000)
    floor.request("command-center", C, 1, 0)
    assert floor.tick(10000) is None  # silent, but not released
    assert floor.tick(65000).event is Event.TIMEOUT
    floor.request("command-center", C, 2, 70000)
    assert floor.release("command-center", 2, 71000).event is Event.RELEASE


def test_adopting_an_earlier_arbiters_holder() -> None:
    floor = FloorPolicy(silence_release_ms=2000)
    assert floor.adopt("dewi", N, 9, 1000)
    assert not floor.adopt("other", N, 1, 1001)  # only into an empty floor
    assert floor.request("ojol-base", N, 2, 1500).event is Event.DENY
    assert floor.tick(3000).event is Event.SILENCE  # not talking any more: freed as usual
