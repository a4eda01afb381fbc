"""The unit's receive side as pure logic: frames pushed in, one frame of PCM pulled out.

`Receiver` keeps one jitter buffer and Opus decoder per talker, decides whose audio may be
played (only the floor holder's, or with no arbiter the first talker heard), and mixes it
with the signalling tones into exactly one frame per `pull(now_ms)`: a tone if one is
queued, else the holder's next frame (decoded, rebuilt with FEC or concealed with PLC),
else silence. A higher-priority holder replaces the one being played at once. At the end
of a spurt the roger beep is queued.

No clock, no socket, no thread: every call takes `now_ms` (monotonic milliseconds), and
what happened (a spurt began or ended, a frame was played) comes back as events in the
`Output`, for the caller's LEDs, hooks and traces. The decoder is libopus, pure
computation. `gateway.client.TalkGroupClient` feeds it from MQTT and pulls from it on the
sound card's clock. Not thread-safe: the caller serialises calls.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway import tones
from gateway.codec import DEFAULT_PARAMS, CodecError, CodecParams, Decoder
from gateway.jitter import Action, JitterBuffer
from gateway.messages import FloorState
from gateway.packet import Frame


class Heard(enum.StrEnum):
    """What `push` did with a frame."""

    ACCEPTED = "accepted"
    OWN = "own"  # this unit's own frame came back (the broker's No Local should stop it)
    TRAILING = "trailing"  # a frame of the spurt that just lost the floor: dropped quietly
    UNAUTHORISED = "unauthorised"  # from a unit without the floor: dropped, to be reported


@dataclass(frozen=True, slots=True)
class RxStart:
    """The first frame of `unit`'s spurt is being played (green LED on)."""

    unit: str
    spurt: int
    group: str = ""


@dataclass(frozen=True, slots=True)
class RxEnd:
    """`unit`'s spurt is over: its END was played (`cut` False, the roger beep follows), or a
    new holder replaced it (`cut` True)."""

    unit: str
    spurt: int
    cut: bool = False
    group: str = ""


@dataclass(frozen=True, slots=True)
class Played:
    """One frame of `unit`'s audio went to the speaker (`error`: it failed to decode and
    silence went instead)."""

    unit: str
    spurt: int
    seq: int
    action: Action
    pcm: bytes
    error: bool = False
    group: str = ""


RxEvent = RxStart | RxEnd | Played


@dataclass(frozen=True, slots=True)
class Output:
    """One frame for the speaker, and what happened while making it."""

    pcm: bytes
    speaking: bool  # radio speech or a tone is playing: the kiosk's speech must pause
    events: tuple[RxEvent, ...] = ()


@dataclass
class _Talker:
    buffer: JitterBuffer
    decoder: Decoder
    playing: bool = False


class Receiver:
    """Everything one unit hears in its group, one frame per pull.

    jitter_start_ms / jitter_max_ms: the jitter buffers' initial and largest delay (ms).
    decoder_factory: makes one decoder per talker (libopus by default).
    group: the talk group it listens to, named in its events (a scanning unit has one
    receiver per group: gateway.scan).
    """

    def __init__(self, unit: str, params: CodecParams = DEFAULT_PARAMS, *,
                 jitter_start_ms: float = 60.0, jitter_max_ms: float = 300.0,
                 play_tones: bool = True,
                 decoder_factory: Callable[[], Decoder] | None = None, group: str = "") -> None:
        self.unit = unit
        self.group = group
        self.params = params
        self.jitter_start_ms = jitter_start_ms
        self.jitter_max_ms = max(jitter_start_ms, jitter_max_ms)
        self.play_tones = play_tones
        self._decoder_factory = decoder_factory or (lambda: Decoder(params))
        self._silence = bytes(params.frame_bytes)
        self.state: FloorState | None = None
        self.arbiter_online: bool | None = None
        self._previous: tuple[str, int] = ("", 0)  # (holder, spurt) before the current one
        self._talkers: dict[str, _Talker] = {}
        self.current: str | None = None  # whose audio the speaker plays
        self._tones: deque[bytes] = deque()

    # --- what is going on ---------------------------------------------------------
    @property
    def idle(self) -> bool:
        """Nothing to play and nothing buffered."""
        return (not self._tones and self.current is None
                and not any(t.buffer.active for t in self._talkers.values()))

    @property
    def emergency(self) -> bool:
        """The floor of this group is held with emergency priority."""
        state = self.state
        return bool(state and state.holder and state.priority == "emergency"
                    and self.arbiter_online is not False)

    @property
    def held(self) -> bool:
        """Someone holds this group's floor (as the arbiter says)."""
        return bool(self.state and self.state.holder and self.arbiter_online is not False)

    def talker(self, unit: str) -> JitterBuffer | None:
        """The jitter buffer of `unit` (for tests and diagnostics)."""
        t = self._talkers.get(unit)
        return t.buffer if t is not None else None

    # --- input --------------------------------------------------------------------
    def arbiter(self, online: bool) -> None:
        self.arbiter_online = online

    def floor(self, state: FloorState) -> None:
        """The arbiter's floor state of this unit's group."""
        old = self.state
        if old is not None and old.holder and (old.holder, old.spurt) != (state.holder, state.spurt):
            # Frames of the spurt that just lost the floor still trail in; they are
            # dropped quietly rather than reported as a unit talking out of turn.
            self._previous = (old.holder, old.spurt)
        self.state = state

    def reset(self) -> None:
        """The unit moved to another group: forget its floor and its talkers."""
        self.state = None
        self._talkers.clear()
        self.current = None

    def push(self, unit: str, frame: Frame, now_ms: float) -> Heard:
        """A valid frame from `unit` arrived in this unit's group."""
        if unit == self.unit:
            return Heard.OWN
        if not self._authorised(unit, frame):
            return Heard.TRAILING if (unit, frame.spurt) == self._previous else Heard.UNAUTHORISED
        talker = self._talkers.get(unit)
        if talker is None:
            talker = _Talker(JitterBuffer(frame_ms=self.params.frame_ms, start_ms=self.jitter_start_ms,
                                          max_ms=self.jitter_max_ms),
                             self._decoder_factory())
            self._talkers[unit] = talker
        talker.buffer.push(frame, now_ms)
        return Heard.ACCEPTED

    def queue_tone(self, pcm: bytes) -> None:
        """Play `pcm` (16 kHz mono) before any radio audio, cut in frames."""
        if not self.play_tones:
            return
        self._tones.extend(tones.frames_of(pcm, self.params.frame_bytes))

    def _authorised(self, unit: str, frame: Frame) -> bool:
        state = self.state
        if self.arbiter_online:
            if state is not None and state.holder:
                return state.holder == unit and state.spurt == frame.spurt
            # The floor is free: only the END frame of a spurt just released may trail.
            talker = self._talkers.get(unit)
            return frame.end and talker is not None and talker.buffer.spurt == frame.spurt
        # No arbiter (listen-before-talk): one talker at a time, whoever came first.
        return self.current is None or self.current == unit

    # --- output -------------------------------------------------------------------
    def pull(self, now_ms: float, muted: bool = False) -> Output:
        """The frame the speaker plays now. `muted` (this unit is transmitting, half
        duplex): radio audio is consumed but silence is played; tones still sound."""
        events: list[RxEvent] = []
        tone = self._tones.popleft() if self._tones else None
        pcm = self._next(now_ms, events) if tone is None else None
        speaking = self.current is not None or bool(self._tones)
        if tone is not None:
            out = tone
        elif pcm is None or muted:
            out = self._silence
        else:
            out = pcm
        return Output(out, speaking, tuple(events))

    def _next(self, now_ms: float, events: list[RxEvent]) -> bytes | None:
        state = self.state
        holder = state.holder if (state and self.arbiter_online is not False) else None
        if holder and self.current not in (None, holder):
            self._drop(self.current, events)  # cut by a higher priority: stop playing it
        if self.current is None:
            for unit in ([holder] if holder else list(self._talkers)):
                talker = self._talkers.get(unit)
                if talker is not None and talker.buffer.active:
                    self.current = unit
                    break
        if self.current is None:
            return None
        unit = self.current
        talker = self._talkers[unit]
        out = talker.buffer.pull(now_ms)
        if out is None:
            return None
        if out.action is Action.END:
            self.current = None
            talker.playing = False
            events.append(RxEnd(unit, out.spurt, group=self.group))
            self.queue_tone(tones.roger())
            return None
        if not talker.playing:
            talker.playing = True
            events.append(RxStart(unit, out.spurt, self.group))
        error = False
        try:
            if out.action is Action.PLAY:
                pcm = talker.decoder.decode(out.payload)
            elif out.action is Action.FEC:
                pcm = talker.decoder.decode_fec(out.payload)
            else:
                pcm = talker.decoder.conceal()
        except CodecError:
            error = True
            pcm = self._silence
        events.append(Played(unit, out.spurt, out.seq, out.action, pcm, error, self.group))
        return pcm

    def _drop(self, unit: str, events: list[RxEvent]) -> None:
        talker = self._talkers.pop(unit, None)
        self.current = None
        if talker is not None and talker.playing:
            events.append(RxEnd(unit, talker.buffer.spurt or 0, cut=True, group=self.group))
