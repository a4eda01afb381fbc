"""The receiver as numbers: frames pushed at times, one frame of PCM pulled every 20 ms
(real Opus, no broker, no clock)."""

from __future__ import annotations

import math
from array import array

from gateway import tones
from gateway.codec import Encoder
from gateway.jitter import Action
from gateway.messages import FloorState
from gateway.packet import Frame
from gateway.receiver import Heard, Played, Receiver, RxEnd, RxStart

GROUP = "batang-kota"
FRAME_BYTES = 640


def speech(n: int, freq: float = 300.0) -> list[bytes]:
    """n frames of a loud tone, Opus-encoded as a talker would."""
    enc = Encoder()
    out = []
    for i in range(n):
        pcm = array("h", (int(8000 * math.sin(2 * math.pi * freq * (i * 320 + k) / 16000))
                          for k in range(320)))
        out.append(enc.encode(pcm.tobytes()))
    return out


PACKETS = speech(12)


def frames(spurt: int, n: int = 10, seq0: int = 100, first: int = 0) -> list[Frame]:
    out = [Frame(seq=(seq0 + i) & 0xFFFF, timestamp=i * 320, spurt=spurt, payload=PACKETS[i],
                 start=i == 0) for i in range(first, n)]
    out.append(Frame(seq=(seq0 + n) & 0xFFFF, timestamp=n * 320, spurt=spurt, end=True))
    return out


def granted(rx: Receiver, holder: str, spurt: int, event: str = "grant") -> None:
    rx.floor(FloorState(group=GROUP, holder=holder, spurt=spurt, event=event,
                        event_unit=holder, event_spurt=spurt))


def loud(pcm: bytes) -> bool:
    return max(abs(s) for s in array("h", pcm)) > 1000


def play(rx: Receiver, arrivals: dict[int, list[tuple[str, Frame]]], until_ms: int, muted=False):
    """Push frames at their arrival times and pull every 20 ms: the Outputs in order."""
    outs = []
    for t in range(until_ms):
        for unit, f in arrivals.get(t, []):
            rx.push(unit, f, t)
        if t % 20 == 0:
            outs.append(rx.pull(t, muted))
    return outs


def events(outs, kind) -> list:
    return [e for o in outs for e in o.events if isinstance(e, kind)]


def receiver(**kw) -> Receiver:
    rx = Receiver("pos-2", jitter_start_ms=60, **kw)
    rx.arbiter(True)
    return rx


def test_the_holders_spurt_is_played_then_the_roger_beep() -> None:
    rx = receiver()
    granted(rx, "dewi", 5)
    outs = play(rx, {5 + 20 * i: [("dewi", f)] for i, f in enumerate(frames(5))}, 600)
    played = events(outs, Played)
    assert [e.action for e in played] == [Action.PLAY] * 10
    assert events(outs, RxStart) == [RxStart("dewi", 5)]
    assert events(outs, RxEnd) == [RxEnd("dewi", 5)]
    assert sum(loud(o.pcm) for o in outs) >= 10 + 1  # the speech, then the roger beep
    roger = tones.roger()[:FRAME_BYTES]
    assert roger in [o.pcm for o in outs]
    first_play = next(i for i, o in enumerate(outs) if any(isinstance(e, Played) for e in o.events))
    assert 60 <= first_play * 20 - 5 < 80  # after the jitter buffer's start delay
    assert outs[-1].speaking is False and rx.idle


def test_speaking_is_set_while_speech_or_a_tone_plays() -> None:
    rx = receiver()
    assert rx.pull(0).speaking is False
    rx.queue_tone(tones.busy())
    out = rx.pull(20)
    assert out.speaking and out.pcm == tones.busy()[:FRAME_BYTES]
    granted(rx, "dewi", 5)
    outs = play(rx, {20 * i: [("dewi", f)] for i, f in enumerate(frames(5))}, 1200)
    assert any(o.speaking and any(isinstance(e, Played) for e in o.events) for o in outs)
    assert not outs[-1].speaking


def test_frames_without_the_floor_are_refused_and_trailing_ones_are_quiet() -> None:
    rx = receiver()
    granted(rx, "dewi", 5)
    assert rx.push("rogue", frames(77)[0], 0) is Heard.UNAUTHORISED
    assert rx.push("dewi", frames(6)[0], 0) is Heard.UNAUTHORISED  # not the granted spurt
    assert rx.push("pos-2", frames(5)[0], 0) is Heard.OWN
    assert rx.push("dewi", frames(5)[0], 0) is Heard.ACCEPTED
    granted(rx, "command-center", 9, event="preempt")
    assert rx.push("dewi", frames(5)[1], 20) is Heard.TRAILING  # the cut spurt trails in


def test_after_a_release_only_the_end_frame_may_trail() -> None:
    rx = receiver()
    granted(rx, "dewi", 5)
    spurt = frames(5, n=3)
    rx.push("dewi", spurt[0], 0)
    rx.floor(FloorState(group=GROUP, event="release", event_unit="dewi", event_spurt=5))
    assert rx.push("dewi", spurt[1], 20) is Heard.TRAILING
    assert rx.push("dewi", spurt[-1], 40) is Heard.ACCEPTED  # the END frame


def test_a_higher_priority_holder_replaces_the_one_being_played_at_once() -> None:
    rx = receiver()
    granted(rx, "dewi", 5)
    arrivals = {20 * i: [("dewi", f)] for i, f in enumerate(frames(5, n=10)[:-1])}
    outs = play(rx, arrivals, 140)
    assert events(outs, RxStart) == [RxStart("dewi", 5)]
    granted(rx, "command-center", 9, event="preempt")
    later = {140 + 20 * i: [("command-center", f)] for i, f in enumerate(frames(9, n=6))}
    outs2 = []
    for t in range(140, 600):
        for unit, f in later.get(t, []):
            rx.push(unit, f, t)
        if t % 20 == 0:
            outs2.append(rx.pull(t))
    assert events(outs2, RxEnd)[0] == RxEnd("dewi", 5, cut=True)
    units = {e.unit for e in events(outs2, Played)}
    assert units == {"command-center"}


def test_a_lost_frame_is_rebuilt_with_fec_and_reordered_ones_play_in_order() -> None:
    rx = receiver()
    granted(rx, "dewi", 5)
    spurt = frames(5)
    order = [0, 2, 1, 3, 5, 6, 7, 8, 9, 10]  # 4 lost, 1 and 2 swapped
    outs = play(rx, {20 * k + 3: [("dewi", spurt[i])] for k, i in enumerate(order)}, 700)
    played = events(outs, Played)
    assert [e.seq - 100 for e in played] == list(range(10))
    assert played[4].action is Action.FEC
    assert all(e.action is Action.PLAY for i, e in enumerate(played) if i != 4)


def test_late_entry_starts_with_the_first_frame_heard() -> None:
    rx = receiver()
    granted(rx, "dewi", 5)
    rest = frames(5, first=6)  # joined 120 ms into the spurt
    outs = play(rx, {20 * i: [("dewi", f)] for i, f in enumerate(rest)}, 400)
    played = events(outs, Played)
    assert [e.seq - 100 for e in played] == [6, 7, 8, 9]
    assert events(outs, RxStart) == [RxStart("dewi", 5)]


def test_without_an_arbiter_the_first_talker_is_heard_and_a_second_is_refused() -> None:
    rx = Receiver("pos-2", jitter_start_ms=60)
    rx.arbiter(False)
    a, b = frames(5), frames(6)
    assert rx.push("dewi", a[0], 0) is Heard.ACCEPTED
    rx.pull(0)
    rx.pull(60)  # dewi is now being played
    assert rx.current == "dewi"
    assert rx.push("ojol", b[0], 61) is Heard.UNAUTHORISED


def test_muted_while_transmitting_consumes_speech_but_plays_tones() -> None:
    rx = receiver()
    granted(rx, "dewi", 5)
    outs = play(rx, {20 * i: [("dewi", f)] for i, f in enumerate(frames(5))}, 600, muted=True)
    assert len(events(outs, Played)) == 10  # consumed in time, not saved for later
    roger = tones.roger()
    roger_frames = [(roger[i:i + FRAME_BYTES] + bytes(FRAME_BYTES))[:FRAME_BYTES]
                    for i in range(0, len(roger), FRAME_BYTES)]
    audible = [o.pcm for o in outs if loud(o.pcm)]
    assert audible and all(pcm in roger_frames for pcm in audible)  # only the roger beep


def test_tones_are_off_when_asked() -> None:
    rx = receiver(play_tones=False)
    rx.queue_tone(tones.busy())
    assert rx.pull(0).pcm == bytes(FRAME_BYTES) and rx.idle


def test_moving_to_another_group_forgets_the_floor_and_the_talkers() -> None:
    rx = receiver()
    granted(rx, "dewi", 5)
    rx.push("dewi", frames(5)[0], 0)
    rx.reset()
    assert rx.state is None and rx.idle and rx.talker("dewi") is None
