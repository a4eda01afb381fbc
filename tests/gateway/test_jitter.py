"""The jitter buffer as numbers: arrival times in, playout decisions out."""

from __future__ import annotations

import random

from gateway.jitter import Action, JitterBuffer, Push
from gateway.packet import Frame

TOC = bytes([9 << 3])


def frame(i: int, spurt: int = 1, seq0: int = 100, end: bool = False, empty: bool = False) -> Frame:
    return Frame(seq=(seq0 + i) & 0xFFFF, timestamp=i * 320, spurt=spurt,
                 payload=b"" if empty else TOC + bytes([i & 0xFF]), start=i == 0, end=end)


def run(buf: JitterBuffer, arrivals: dict[int, list[Frame]], until_ms: int) -> list[tuple[int, object]]:
    """Push frames at their arrival times and pull every 20 ms; (time, playout) pairs."""
    out = []
    for t in range(0, until_ms, 1):
        for f in arrivals.get(t, []):
            buf.push(f, t)
        if t % 20 == 0:
            p = buf.pull(t)
            if p is not None:
                out.append((t, p))
    return out


def payload_index(p) -> int:
    return p.payload[1]


def test_in_order_stream_plays_every_frame_after_the_start_delay() -> None:
    buf = JitterBuffer(start_ms=60)
    arrivals = {20 * i + 5: [frame(i, end=(i == 9))] for i in range(10)}
    out = run(buf, arrivals, 600)
    plays = [(t, p) for t, p in out if p.action is Action.PLAY]
    assert [payload_index(p) for _, p in plays] == list(range(10))
    assert plays[0][0] - 5 >= 60  # waited the initial 60 ms before playing
    assert plays[0][0] - 5 < 60 + 20
    assert out[-1][1].action is Action.END and plays[-1][1].last
    assert buf.stats.plc == 0 and buf.stats.fec == 0


def test_duplicates_are_dropped_and_counted() -> None:
    buf = JitterBuffer()
    assert buf.push(frame(0), 0) is Push.ACCEPTED
    assert buf.push(frame(1), 20) is Push.ACCEPTED
    assert buf.push(frame(1), 21) is Push.DUPLICATE
    assert buf.push(frame(0), 22) is Push.DUPLICATE
    assert buf.stats.duplicates == 2


def test_reordered_frames_play_in_order() -> None:
    buf = JitterBuffer(start_ms=60)
    order = [0, 2, 1, 4, 3, 5]
    arrivals = {10 + 20 * k: [frame(i, end=(i == 5))] for k, i in enumerate(order)}
    out = run(buf, arrivals, 400)
    plays = [payload_index(p) for _, p in out if p.action is Action.PLAY]
    assert plays == [0, 1, 2, 3, 4, 5]
    assert buf.stats.reordered == 2


def test_single_loss_uses_fec_from_the_next_frame() -> None:
    buf = JitterBuffer(start_ms=60)
    arrivals = {20 * i: [frame(i, end=(i == 7))] for i in range(8) if i != 3}
    out = run(buf, arrivals, 500)
    actions = [p.action for _, p in out]
    fec = [p for _, p in out if p.action is Action.FEC]
    assert len(fec) == 1 and payload_index(fec[0]) == 4  # rebuilt from frame 4's FEC data
    assert actions.count(Action.PLAY) == 7


def test_burst_loss_falls_back_to_plc() -> None:
    buf = JitterBuffer(start_ms=60)
    arrivals = {20 * i: [frame(i, end=(i == 9))] for i in range(10) if i not in (3, 4, 5)}
    out = run(buf, arrivals, 600)
    actions = [p.action for _, p in out]
    assert actions.count(Action.PLC) == 2 and actions.count(Action.FEC) == 1


def test_late_frame_is_dropped_and_the_target_grows() -> None:
    buf = JitterBuffer(start_ms=60)
    arrivals = {20 * i: [frame(i, end=(i == 29))] for i in range(30) if i != 4}
    arrivals[400] = [frame(4)]  # way after its slot
    before = buf.target_ms
    run(buf, arrivals, 420)
    assert buf.stats.late == 1 and buf.stats.underruns == 0
    assert buf.target_ms == before + 20


def test_late_entry_starts_at_the_first_frame_heard() -> None:
    buf = JitterBuffer(start_ms=60)
    arrivals = {20 * i: [frame(i, end=(i == 59))] for i in range(37, 60)}
    out = run(buf, arrivals, 2000)
    plays = [payload_index(p) for _, p in out if p.action is Action.PLAY]
    assert plays[0] == 37 and plays[-1] == 59 and len(plays) == 23
    assert buf.stats.plc == 0


def test_empty_end_frame_ends_the_spurt_and_stragglers_do_not_restart_it() -> None:
    buf = JitterBuffer(start_ms=20)
    buf.push(frame(0), 0)
    buf.push(frame(1, end=True, empty=True), 20)
    assert buf.pull(20).action is Action.PLAY
    assert buf.pull(40).action is Action.END
    assert not buf.active
    assert buf.push(frame(0), 60) is Push.LATE  # a copy of the finished spurt
    assert buf.pull(80) is None


def test_lost_end_frame_ends_by_timeout() -> None:
    buf = JitterBuffer(start_ms=60, end_timeout_ms=600)
    arrivals = {20 * i: [frame(i)] for i in range(5)}
    out = run(buf, arrivals, 1500)
    assert out[-1][1].action is Action.END
    assert buf.stats.implicit_ends == 1


def test_new_spurt_replaces_one_that_never_ended() -> None:
    buf = JitterBuffer(start_ms=20)
    buf.push(frame(0, spurt=1), 0)
    assert buf.push(frame(0, spurt=2), 10) is Push.ACCEPTED
    assert buf.spurt == 2 and buf.stats.implicit_ends == 1


def test_sequence_numbers_wrap() -> None:
    buf = JitterBuffer(start_ms=60)
    arrivals = {20 * i: [frame(i, seq0=65530, end=(i == 11))] for i in range(12)}
    out = run(buf, arrivals, 600)
    plays = [payload_index(p) for _, p in out if p.action is Action.PLAY]
    assert plays == list(range(12))


def test_far_away_sequence_number_is_refused() -> None:
    buf = JitterBuffer()
    buf.push(frame(0), 0)
    assert buf.push(frame(20000), 20) is Push.OUT_OF_RANGE


def test_target_adapts_down_on_a_quiet_network_and_up_on_a_jittery_one() -> None:
    calm = JitterBuffer(start_ms=60, min_ms=20)
    for spurt in range(1, 6):
        base = spurt * 10000
        arrivals = {base + 20 * i + 3: [frame(i, spurt=spurt, end=(i == 49))] for i in range(50)}
        for t in range(base, base + 1500):
            for f in arrivals.get(t, []):
                calm.push(f, t)
            if t % 20 == 0:
                calm.pull(t)
    assert calm.target_ms < 60

    rng = random.Random(3)
    jittery = JitterBuffer(start_ms=60, max_ms=300)
    for spurt in range(1, 6):
        base = spurt * 10000
        arrivals: dict[int, list[Frame]] = {}
        for i in range(50):
            arrivals.setdefault(base + 20 * i + rng.randrange(0, 120), []).append(
                frame(i, spurt=spurt, end=(i == 49)))
        for t in range(base, base + 2500):
            for f in arrivals.get(t, []):
                jittery.push(f, t)
            if t % 20 == 0:
                jittery.pull(t)
    assert jittery.target_ms > 60


def test_buffer_sheds_delay_when_far_more_than_the_target_is_queued() -> None:
    buf = JitterBuffer(start_ms=60)
    for i in range(30):  # a burst: 600 ms of audio arrives at once
        buf.push(frame(i), 0)
    played = [buf.pull(t) for t in range(60, 60 + 20 * 40, 20)]
    assert buf.stats.dropped_for_delay > 0
    assert all(p is None or p.action is not Action.PLC for p in played[:10])


def test_random_valid_and_repeated_frames_never_break_the_buffer() -> None:
    rng = random.Random(11)
    buf = JitterBuffer()
    for t in range(0, 20000, 5):
        if rng.random() < 0.6:
            buf.push(frame(rng.randrange(0, 300), spurt=rng.choice([1, 2, 3]), end=rng.random() < 0.01), t)
        if t % 20 == 0:
            p = buf.pull(t)
            assert p is None or p.action in Action
    s = buf.stats
    assert s.accepted > 0 and s.duplicates + s.late > 0


def test_a_late_first_frame_does_not_delay_the_whole_spurt() -> None:
    """Issue 18: playout was timed from the first frame's arrival, so a first frame that
    waited (behind the floor request) delayed every frame of the spurt by as much."""
    buf = JitterBuffer(start_ms=60)
    arrivals = {5 + 20 * i: [frame(i, end=(i == 20))] for i in range(1, 21)}
    arrivals[45] = arrivals.get(45, []) + [frame(0)]  # 40 ms late, after frames 1 and 2
    out = run(buf, arrivals, 800)
    plays = [(t, p) for t, p in out if p.action is Action.PLAY]
    assert [payload_index(p) for _, p in plays] == list(range(21))
    # On the schedule of the frames that came on time (due at 5 + 60 ms): not at 45 + 60.
    assert plays[0][0] == 80
    assert buf.stats.plc == 0 and buf.stats.late == 0

