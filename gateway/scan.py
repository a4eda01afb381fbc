"""Scan: a unit hears up to four talk groups besides its selected one, in a priority order.

`ScanPolicy` decides which group's spurt the speaker plays: among the groups with a live
spurt (audio buffered or playing, or its roger beep), an emergency spurt first, then the
highest group in the order. A spurt in a higher group pre-empts a lower one at the next
frame; the lower one is still received and decoded but not heard, so when the higher one
ends (after its roger beep) the lower resumes live, where its talker is now.

`Scanner` is the unit's whole receive side for all its groups: one `gateway.receiver.Receiver`
per group, the unit's own tones (go-ahead, busy, cut) before anything else, and the
announcements it speaks (gateway.announce) after them, only while every floor it hears is
free and it does not talk: an announcement is cut by any spurt (an emergency first of all)
and spoken again from its alert tone once the floors are free, until it expires.

Order: `order(selected, scan)` is the scan list (highest first) with the selected group
(the one the unit talks in) placed first when the list does not name it.

Pure like the receiver: `now_ms` in, one frame of PCM per `pull` out, no clock, no socket.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gateway import tones
from gateway.codec import DEFAULT_PARAMS, CodecParams, Decoder
from gateway.messages import FloorState
from gateway.packet import Frame
from gateway.receiver import Heard, Output, Played, Receiver, RxEvent

MAX_ANNOUNCEMENTS = 8  # queued on a unit; the oldest goes first when more arrive


def order(selected: str, scan: Sequence[str]) -> tuple[str, ...]:
    """The groups a unit hears, highest priority first."""
    listed = tuple(dict.fromkeys(scan))
    return listed if selected in listed else (selected, *listed)


@dataclass(frozen=True, slots=True)
class Switch:
    """The speaker moved from one group to another (`None`: nothing live)."""

    before: str | None
    after: str | None
    why: str  # "start", "preempt" (a higher group took over), "resume" (back to a lower), "end"


class ScanPolicy:
    """Which of the live groups is heard (pure; `groups` highest priority first)."""

    def __init__(self, groups: Sequence[str]) -> None:
        self.groups = tuple(groups)
        self.current: str | None = None

    def rank(self, group: str) -> int:
        return self.groups.index(group)

    def choose(self, live: Mapping[str, bool]) -> str | None:
        """`live`: group -> its spurt has emergency priority. The group to hear, or None."""
        known = [g for g in live if g in self.groups]
        if not known:
            return None
        return min(known, key=lambda g: (not live[g], self.rank(g)))

    def update(self, live: Mapping[str, bool]) -> Switch | None:
        """Choose, and say how the choice changed (None: it did not)."""
        before, after = self.current, self.choose(live)
        self.current = after
        if before == after:
            return None
        if after is None:
            return Switch(before, None, "end")
        if before is None:
            return Switch(None, after, "start")
        if before in live:  # the one heard is still live: it was pre-empted
            return Switch(before, after, "preempt")
        return Switch(before, after, "resume")


@dataclass(frozen=True, slots=True)
class ScanSwitched:
    """Output event: the speaker now plays `after` instead of `before`."""

    before: str | None
    after: str | None
    why: str


@dataclass(frozen=True, slots=True)
class AnnouncementPlayed:
    """Output event: an announcement started (`started`), was cut by a spurt (`cut`) or
    ended (`done`)."""

    key: object
    group: str
    what: str  # "started" | "cut" | "done" | "expired"


ScanEvent = RxEvent | ScanSwitched | AnnouncementPlayed


@dataclass
class _Queued:
    key: object
    group: str
    frames: list[bytes]
    expires_ms: float
    pos: int = 0


class Scanner:
    """Every group a unit hears, one frame per pull. Not thread-safe: the caller serialises."""

    def __init__(self, unit: str, groups: Sequence[str], params: CodecParams = DEFAULT_PARAMS, *,
                 jitter_start_ms: float = 60.0, jitter_max_ms: float = 300.0,
                 play_tones: bool = True,
                 decoder_factory: Callable[[], Decoder] | None = None) -> None:
        self.unit = unit
        self.params = params
        self.play_tones = play_tones
        self._make = lambda group: Receiver(unit, params, jitter_start_ms=jitter_start_ms,
                                            jitter_max_ms=jitter_max_ms, play_tones=play_tones,
                                            decoder_factory=decoder_factory, group=group)
        self._silence = bytes(params.frame_bytes)
        self.arbiter_online: bool | None = None
        self.receivers: dict[str, Receiver] = {}
        self.policy = ScanPolicy(())
        self._tones: deque[bytes] = deque()
        self._announcements: deque[_Queued] = deque()
        self.set_groups(groups)

    # --- groups ---------------------------------------------------------------------
    @property
    def groups(self) -> tuple[str, ...]:
        return self.policy.groups

    def set_groups(self, groups: Sequence[str]) -> None:
        """Hear these groups (highest first): receivers of groups still heard keep their
        floor and spurts; the others are forgotten."""
        groups = tuple(dict.fromkeys(groups))
        if not groups:
            raise ValueError("a unit hears at least its selected group")
        self.receivers = {g: self.receivers.get(g) or self._make(g) for g in groups}
        if self.arbiter_online is not None:
            for rx in self.receivers.values():
                rx.arbiter(self.arbiter_online)
        current = self.policy.current if self.policy.current in groups else None
        self.policy = ScanPolicy(groups)
        self.policy.current = current
        self._announcements = deque(a for a in self._announcements if a.group in groups)

    def receiver(self, group: str) -> Receiver | None:
        return self.receivers.get(group)

    def reset(self, group: str) -> None:
        """Forget one group's floor and talkers (the unit left and re-joined it)."""
        rx = self.receivers.get(group)
        if rx is not None:
            rx.reset()

    # --- input ----------------------------------------------------------------------
    def arbiter(self, online: bool) -> None:
        self.arbiter_online = online
        for rx in self.receivers.values():
            rx.arbiter(online)

    def floor(self, state: FloorState) -> bool:
        """A group's floor state; False when this unit does not hear that group."""
        rx = self.receivers.get(state.group)
        if rx is None:
            return False
        rx.floor(state)
        return True

    def push(self, group: str, unit: str, frame: Frame, now_ms: float) -> Heard | None:
        """A frame in `group` (None: a group this unit does not hear)."""
        rx = self.receivers.get(group)
        return rx.push(unit, frame, now_ms) if rx is not None else None

    def queue_tone(self, pcm: bytes) -> None:
        """The unit's own tone (go-ahead, busy, cut): played before anything else."""
        if not self.play_tones:
            return
        self._tones.extend(tones.frames_of(pcm, self.params.frame_bytes))

    def queue_announcement(self, key: object, group: str, speech: bytes, expires_ms: float) -> None:
        """Speak `speech` (16 kHz mono int16; may be empty: the tone alone) after the alert
        tone once every floor is free, before `expires_ms`."""
        frames = tones.frames_of(tones.alert() + speech, self.params.frame_bytes)
        if len(self._announcements) >= MAX_ANNOUNCEMENTS:
            self._announcements.popleft()
        self._announcements.append(_Queued(key, group, frames, expires_ms))

    # --- what is going on -----------------------------------------------------------
    @property
    def current(self) -> str | None:
        """The group whose spurt the speaker plays (or would, once its buffer fills)."""
        return self.policy.current

    @property
    def idle(self) -> bool:
        """Nothing to play, nothing buffered, no announcement waiting."""
        return (not self._tones and not self._announcements
                and all(rx.idle for rx in self.receivers.values()))

    @property
    def announcements_waiting(self) -> int:
        return len(self._announcements)

    def floors_free(self) -> bool:
        """No group this unit hears has a floor holder or a spurt to play."""
        return all(rx.idle and not rx.held for rx in self.receivers.values())

    def live(self) -> dict[str, bool]:
        """Groups with a spurt (or its roger beep) to play -> it has emergency priority."""
        return {g: rx.emergency for g, rx in self.receivers.items() if not rx.idle}

    # --- output ---------------------------------------------------------------------
    def pull(self, now_ms: float, muted: bool = False) -> Output:
        """The frame the speaker plays now. `muted`: this unit transmits (half duplex):
        radio audio is consumed but not heard, tones still sound, announcements wait."""
        events: list[ScanEvent] = []
        switch = self.policy.update(self.live())
        if switch is not None:
            events.append(ScanSwitched(switch.before, switch.after, switch.why))
        heard = self.policy.current
        tone = self._tones.popleft() if self._tones else None
        pcm: bytes | None = None
        speaking = tone is not None
        for group, rx in self.receivers.items():
            if group == heard:
                if tone is not None:
                    continue  # its audio waits behind the unit's own tone, as one group's would
                out = rx.pull(now_ms, muted)
                pcm, speaking = out.pcm, speaking or out.speaking
                events.extend(out.events)
            else:  # received, decoded, not heard (pre-empted, or nothing to play)
                out = rx.pull(now_ms, True)
                events.extend(e for e in out.events if not isinstance(e, Played))
        said = self._announcement(now_ms, muted, tone is None and heard is None, events)
        if said is not None:
            pcm, speaking = said, True
        if tone is not None:
            pcm = tone
        return Output(pcm if pcm is not None else self._silence, speaking, tuple(events))

    def _announcement(self, now_ms: float, muted: bool, quiet: bool,
                      events: list[ScanEvent]) -> bytes | None:
        while self._announcements and self._announcements[0].expires_ms <= now_ms:
            gone = self._announcements.popleft()
            events.append(AnnouncementPlayed(gone.key, gone.group, "expired"))
        if not self._announcements:
            return None
        head = self._announcements[0]
        if muted or not quiet or not self.floors_free():
            if head.pos:  # a spurt (or this unit's own talk) cut it: again from the tone later
                head.pos = 0
                events.append(AnnouncementPlayed(head.key, head.group, "cut"))
            return None
        if head.pos == 0:
            events.append(AnnouncementPlayed(head.key, head.group, "started"))
        frame = head.frames[head.pos]
        head.pos += 1
        if head.pos >= len(head.frames):
            self._announcements.popleft()
            events.append(AnnouncementPlayed(head.key, head.group, "done"))
        return frame

