"""An adaptive jitter buffer for one talker, as pure logic fed with frames and times.

The receiver pushes every frame as it arrives and pulls one frame per playout tick
(every `frame_ms`). What a pull returns tells the caller what to do with the decoder:

* PLAY  — decode `payload`;
* FEC   — this frame is missing but the next one is here: decode the next packet with
          FEC on, which rebuilds this one from the redundancy Opus put in it;
* PLC   — missing with nothing to rebuild from: run Opus packet-loss concealment;
* END   — the spurt is over (its END frame was played, or it fell silent): roger beep.

Playout of a spurt starts `target_ms` after its first frame should have arrived, judged
from the first few frames (`ANCHOR_FRAMES`), not the first alone: when the first frame
came late (it waited behind the floor request) and the next ones on time, playout starts
on their schedule instead of carrying the first frame's delay through the whole spurt.
The target starts
at `start_ms` (60 ms) and adapts: it follows the RFC 3550 interarrival-jitter estimate
between spurts, grows by one frame when a frame arrives too late to be played or the
buffer runs dry mid-spurt, and the buffer drops a frame when it holds far more than the
target, so the delay does not creep up. A listener that joins mid-spurt starts at the
first frame it receives (late entry). Duplicates and frames of finished spurts are
dropped and counted. No clock, no socket, no decoder here: tests feed numbers.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field

from gateway.packet import Frame, seq_delta

SAMPLES_PER_MS = 16  # the frame timestamp counts samples at 16 kHz


class Action(enum.StrEnum):
    PLAY = "play"
    FEC = "fec"
    PLC = "plc"
    END = "end"


class Push(enum.StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"  # its playout slot has passed (or its spurt is over)
    OUT_OF_RANGE = "out_of_range"  # sequence number implausibly far from the stream


@dataclass(frozen=True)
class Playout:
    action: Action
    spurt: int
    seq: int = 0
    payload: bytes = b""
    last: bool = False  # PLAY of the spurt's final (END-flagged) frame


@dataclass
class JitterStats:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    out_of_range: int = 0
    reordered: int = 0
    played: int = 0
    fec: int = 0
    plc: int = 0
    underruns: int = 0
    dropped_for_delay: int = 0
    overflow: int = 0
    spurts: int = 0
    implicit_ends: int = 0
    target_history: list[float] = field(default_factory=list)


class JitterBuffer:
    """Frames of one talker in, one playout decision per tick out."""

    MAX_SEQ_JUMP = 500  # 10 s of 20 ms frames: anything further is not this stream
    ANCHOR_FRAMES = 5  # frames whose arrival may move the start of playout earlier

    def __init__(self, frame_ms: int = 20, start_ms: float = 60.0, min_ms: float = 20.0,
                 max_ms: float = 300.0, max_frames: int = 150, plc_max_frames: int = 5,
                 end_timeout_ms: float = 600.0) -> None:
        if not 0 < min_ms <= start_ms <= max_ms:
            raise ValueError("jitter buffer: need 0 < min_ms <= start_ms <= max_ms")
        self.frame_ms = frame_ms
        self.min_ms, self.max_ms = min_ms, max_ms
        self.target_ms = float(start_ms)
        self.max_frames = max_frames
        self.plc_max_frames = plc_max_frames
        self.end_timeout_ms = end_timeout_ms
        self.stats = JitterStats()
        self.jitter_ms = 0.0  # RFC 3550 interarrival jitter estimate
        self._reset_stream()
        self._finished: deque[int] = deque(maxlen=16)

    # --- state --------------------------------------------------------------------
    def _reset_stream(self) -> None:
        self.spurt: int | None = None
        self.playing = False
        self._frames: dict[int, Frame] = {}  # extended seq -> frame
        self._highest: int | None = None  # extended seq of the highest frame seen
        self._next = 0  # extended seq to play next
        self._end_at: int | None = None  # extended seq of the END frame, when known
        self._play_at = 0.0
        self._base = 0  # extended seq of the spurt's first frame heard
        self._anchor = 0.0  # when that frame should have arrived (ms), from the first few
        self._anchor_left = 0  # frames still allowed to move _play_at earlier
        self._last_arrival = 0.0
        self._prev_transit: float | None = None
        self._missing_run = 0
        self._pulled_any = False
        self._played_recent: deque[int] = deque(maxlen=64)

    @property
    def active(self) -> bool:
        """A spurt is buffered or playing."""
        return self.spurt is not None

    @property
    def depth_ms(self) -> float:
        """Audio buffered ahead of the playout point."""
        if self._highest is None:
            return 0.0
        return max(0, self._highest - self._next + 1) * self.frame_ms

    # --- input --------------------------------------------------------------------
    def push(self, frame: Frame, now_ms: float) -> Push:
        if frame.spurt in self._finished:
            self.stats.late += 1
            return Push.LATE
        if self.spurt is None or frame.spurt != self.spurt:
            if self.spurt is not None:
                # A new spurt while the old one never ended (its END frame was lost):
                # the talker has moved on, so do we.
                self._finish(implicit=True)
            self._start(frame, now_ms)
            return Push.ACCEPTED
        assert self._highest is not None
        ext = self._highest + seq_delta(frame.seq, self._highest & 0xFFFF)
        if abs(ext - self._highest) > self.MAX_SEQ_JUMP:
            self.stats.out_of_range += 1
            return Push.OUT_OF_RANGE
        if ext in self._frames or ext in self._played_recent:
            self.stats.duplicates += 1
            return Push.DUPLICATE
        if ext < self._next and not self._pulled_any:
            self._next = ext  # reordered before playout began: start from it
        elif ext < self._next:
            self.stats.late += 1
            # It came after its slot: the target was too small for this network.
            self._grow()
            return Push.LATE
        if ext < self._highest:
            self.stats.reordered += 1
        self._store(ext, frame, now_ms)
        return Push.ACCEPTED

    def _start(self, frame: Frame, now_ms: float) -> None:
        self._reset_stream()
        self.spurt = frame.spurt
        self.stats.spurts += 1
        self._highest = frame.seq
        self._next = frame.seq  # late entry: whatever arrives first is where we start
        self._base = frame.seq
        self._anchor = now_ms
        self._play_at = now_ms + self.target_ms
        self._anchor_left = self.ANCHOR_FRAMES  # this one included, below
        self.stats.target_history.append(self.target_ms)
        self._store(frame.seq, frame, now_ms)

    def _store(self, ext: int, frame: Frame, now_ms: float) -> None:
        self.stats.accepted += 1
        self._frames[ext] = frame
        assert self._highest is not None
        self._highest = max(self._highest, ext)
        if frame.end:
            self._end_at = ext
        self._last_arrival = now_ms
        if self._anchor_left > 0 and not self.playing:
            # When the first frame should have arrived, if this frame was on time; the
            # earliest of these estimates is the least delayed path through the network.
            self._anchor_left -= 1
            self._anchor = min(self._anchor, now_ms - (ext - self._base) * self.frame_ms)
            due = self._anchor + (self._next - self._base) * self.frame_ms + self.target_ms
            self._play_at = min(self._play_at, due)
        transit = now_ms - frame.timestamp / SAMPLES_PER_MS
        if self._prev_transit is not None:
            self.jitter_ms += (abs(transit - self._prev_transit) - self.jitter_ms) / 16.0
        self._prev_transit = transit
        while len(self._frames) > self.max_frames:
            oldest = min(self._frames)
            del self._frames[oldest]
            self.stats.overflow += 1
            self._next = max(self._next, oldest + 1)

    # --- output -------------------------------------------------------------------
    def pull(self, now_ms: float) -> Playout | None:
        """What to play in this tick; None when there is nothing (yet)."""
        if self.spurt is None:
            return None
        if not self.playing:
            if now_ms - self._last_arrival >= self.end_timeout_ms:
                return self._finish(implicit=True)
            if now_ms < self._play_at:
                return None
            self.playing = True
            self._anchor_left = 0  # from now on only growing the target moves playout
        if self._end_at is not None and self._next > self._end_at:
            return self._finish(implicit=False)
        self._trim_excess()
        self._pulled_any = True
        spurt = self.spurt
        frame = self._frames.pop(self._next, None)
        seq = self._next
        self._next += 1
        if frame is not None:
            self._missing_run = 0
            self._played_recent.append(seq)
            if frame.end and not frame.payload:
                return self._finish(implicit=False)
            self.stats.played += 1
            return Playout(Action.PLAY, spurt, seq & 0xFFFF, frame.payload, last=frame.end)
        # Missing. Anything later buffered means it was lost (or is very late).
        if self._frames:
            self._missing_run = 0
            following = self._frames.get(seq + 1)
            if following is not None and following.payload:
                self.stats.fec += 1
                return Playout(Action.FEC, spurt, seq & 0xFFFF, following.payload)
            self.stats.plc += 1
            return Playout(Action.PLC, spurt, seq & 0xFFFF)
        # Buffer ran dry mid-spurt: conceal briefly, then re-buffer with a larger target.
        self._missing_run += 1
        if self._missing_run <= self.plc_max_frames:
            self.stats.plc += 1
            return Playout(Action.PLC, spurt, seq & 0xFFFF)
        self.stats.underruns += 1
        self._grow()
        self.playing = False
        self._missing_run = 0
        self._next = seq  # nothing was played for this slot; wait for it
        self._play_at = now_ms + self.target_ms
        if now_ms - self._last_arrival >= self.end_timeout_ms:
            return self._finish(implicit=True)
        return None

    def _trim_excess(self) -> None:
        """Drop one frame when far more is buffered than the target (delay creep)."""
        assert self._highest is not None
        if self.depth_ms > self.target_ms + 3 * self.frame_ms and self._next in self._frames \
                and self._end_at != self._next:
            del self._frames[self._next]
            self._next += 1
            self.stats.dropped_for_delay += 1

    def _finish(self, implicit: bool) -> Playout:
        spurt = self.spurt if self.spurt is not None else 0
        if implicit:
            self.stats.implicit_ends += 1
        self._finished.append(spurt)
        self._adapt()
        self._reset_stream()
        return Playout(Action.END, spurt)

    # --- adaptation ---------------------------------------------------------------
    def _grow(self) -> None:
        self.target_ms = min(self.max_ms, self.target_ms + self.frame_ms)

    def _adapt(self) -> None:
        """Between spurts: follow the jitter estimate (never below one frame of margin)."""
        wanted = self.frame_ms * math.ceil((self.frame_ms + 3.0 * self.jitter_ms) / self.frame_ms)
        # Move halfway, so one noisy spurt does not swing the delay.
        self.target_ms = min(self.max_ms, max(self.min_ms, (self.target_ms + wanted) / 2.0))
