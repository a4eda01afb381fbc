"""The transmit machine as numbers: button, floor and time events in, actions out (no broker)."""

from __future__ import annotations

import pytest

from gateway.messages import FloorState
from gateway.transmit import Deny, Grant, Mode, Request, Stop, TransmitMachine, Tx

GROUP = "batang-kota"


def machine(online: bool | None = True, **kw) -> TransmitMachine:
    m = TransmitMachine("dewi", request_timeout_ms=kw.get("request_timeout_ms", 400),
                        lbt_ms=kw.get("lbt_ms", 500), tx_timeout_ms=kw.get("tx_timeout_ms", 60000))
    if online is not None:
        m.arbiter(online)
    return m


def state(holder: str = "", spurt: int = 0, event: str = "grant", event_unit: str = "",
          event_spurt: int = 0) -> FloorState:
    return FloorState(group=GROUP, holder=holder, spurt=spurt, event=event,
                      event_unit=event_unit or holder, event_spurt=event_spurt or spurt)


def talking(m: TransmitMachine, spurt: int = 7, at: float = 1000.0) -> None:
    assert m.press(at, spurt, True) == [Request("request", spurt)]
    assert m.floor(state("dewi", spurt), at + 3) == [Grant(spurt, Mode.ARBITER, 3.0)]


def test_press_asks_the_arbiter_and_its_grant_starts_the_transmission() -> None:
    m = machine()
    assert m.press(1000, 7, True) == [Request("request", 7)]
    assert m.state is Tx.REQUESTING and m.deadline_ms() == 1400
    assert m.floor(state("dewi", 7), 1012) == [Grant(7, Mode.ARBITER, 12.0)]
    assert m.state is Tx.TALKING and m.mode(True) is Mode.ARBITER
    assert m.deadline_ms() == 1012 + 60000  # the transmit time-out is now what is timed


def test_a_second_press_while_busy_does_nothing() -> None:
    m = machine()
    m.press(1000, 7, True)
    assert m.press(1001, 8, True) == []
    assert m.spurt == 7


def test_a_deny_for_this_spurt_gives_busy_and_one_for_another_is_ignored() -> None:
    m = machine()
    m.press(1000, 7, True)
    assert m.floor(state("pos-2", 99, event="deny", event_unit="ojol", event_spurt=5), 1005) == []
    assert m.floor(state("pos-2", 99, event="deny", event_unit="dewi", event_spurt=6), 1005) == []
    assert m.state is Tx.REQUESTING
    assert m.floor(state("pos-2", 99, event="deny", event_unit="dewi", event_spurt=7), 1006) == [
        Deny(7, "busy")]
    assert m.state is Tx.IDLE and m.deadline_ms() is None


def test_a_grant_of_an_older_spurt_of_this_unit_is_not_this_press() -> None:
    m = machine()
    m.press(1000, 7, True)
    assert m.floor(state("dewi", 6), 1002) == []  # e.g. the retained state of the last spurt
    assert m.state is Tx.REQUESTING


def test_pressing_offline_is_refused_at_once() -> None:
    m = machine()
    assert m.press(1000, 7, False) == [Deny(0, "offline")]
    assert m.state is Tx.IDLE and m.mode(False) is Mode.OFFLINE


def test_release_while_waiting_gives_the_request_back_and_while_talking_stops() -> None:
    m = machine()
    m.press(1000, 7, True)
    assert m.release(1100, True) == [Request("release", 7)]
    assert m.state is Tx.IDLE
    m.press(2000, 8, True)
    assert m.release(2100, False) == []  # nothing can be sent; the arbiter's request expires
    talking(m, 9, 3000)
    [stop] = m.release(4000, True)
    assert stop == Stop(9, "release") and not stop.cut
    assert m.release(4001, True) == []


def test_preemption_cuts_the_talker_with_the_cut_tone() -> None:
    m = machine()
    talking(m)
    [stop] = m.floor(state("command-center", 55, event="preempt", event_unit="dewi", event_spurt=7), 2000)
    assert stop == Stop(7, "preempted") and stop.cut
    assert m.state is Tx.IDLE


def test_the_arbiter_freeing_the_floor_stops_the_talker_with_its_reason() -> None:
    m = machine()
    talking(m)
    assert m.floor(state("dewi", 7), 1500) == []  # the same grant again (a reconnect)
    assert m.floor(state("", 0, event="silence", event_unit="dewi", event_spurt=7), 3100) == [
        Stop(7, "silence")]


def test_transmit_timeout_is_a_deadline_of_tick() -> None:
    m = machine(tx_timeout_ms=1000)
    talking(m, at=0)
    assert m.deadline_ms() == 1003
    assert m.tick(1002) == []
    [stop] = m.tick(1003)
    assert stop == Stop(7, "timeout") and stop.cut


def test_end_of_input_and_device_failure_stop_only_their_own_spurt() -> None:
    m = machine()
    talking(m)
    assert m.source_ended(6) == [] and m.device_failed(6) == []
    [stop] = m.source_ended(7)
    assert stop == Stop(7, "eof") and not stop.cut
    talking(m, 8, 5000)
    [stop] = m.device_failed(8)
    assert stop == Stop(8, "device") and stop.cut


def test_no_answer_falls_back_to_listen_before_talk_counted_from_the_press() -> None:
    m = machine()
    m.press(1000, 7, True)
    assert m.tick(1399) == []
    assert m.tick(1400) == [] and m.state is Tx.LISTENING
    assert m.deadline_ms() == 1500  # lbt_ms after the press, not after the time-out
    assert m.tick(1450) == []
    assert m.tick(1500) == [Grant(7, Mode.LBT, 500.0)]
    assert m.mode(True) is Mode.LBT


def test_a_late_grant_while_listening_is_still_taken() -> None:
    m = machine()
    m.press(1000, 7, True)
    m.tick(1400)
    assert m.floor(state("dewi", 7), 1420) == [Grant(7, Mode.ARBITER, 420.0)]


def test_with_the_arbiter_offline_a_press_listens_and_someone_talking_gives_busy() -> None:
    m = machine(online=False)
    assert m.mode(True) is Mode.LBT
    assert m.press(1000, 7, True) == [] and m.state is Tx.LISTENING
    assert m.heard(1200) == [Deny(7, "busy")]  # at once, not at the end of the window
    m.heard(5000)
    assert m.press(5100, 8, True) == [Deny(8, "busy")]  # heard just before the press
    assert m.press(6000, 9, True) == []
    assert m.tick(6500) == [Grant(9, Mode.LBT, 500.0)]


def test_until_the_arbiter_is_heard_of_a_press_still_asks_it() -> None:
    m = machine(online=None)
    assert m.mode(True) is Mode.LBT
    assert m.press(1000, 7, True) == [Request("request", 7)]


def test_a_listen_before_talk_transmission_ignores_the_floor_state() -> None:
    m = machine(online=False)
    m.press(0, 7, True)
    m.tick(500)
    m.arbiter(True)  # the arbiter comes back while this unit talks
    assert m.floor(state("", 0, event="idle"), 600) == []
    assert m.state is Tx.TALKING and m.mode(True) is Mode.LBT


def test_the_link_dropping_cuts_a_transmission_and_drops_a_request() -> None:
    m = machine()
    m.press(1000, 7, True)
    assert m.link(False) == [] and m.state is Tx.IDLE
    talking(m, 8, 2000)
    assert m.link(True) == []
    [stop] = m.link(False)
    assert stop == Stop(8, "link") and stop.cut


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TransmitMachine("dewi", request_timeout_ms=0, lbt_ms=500, tx_timeout_ms=1000)
