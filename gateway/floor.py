"""Floor control as pure logic: who may talk in a group, fed with events and times.

The arbiter (an MQTT service) owns one `FloorPolicy` per group and publishes what it
decides; a unit whose arbiter is unreachable falls back to `ListenBeforeTalk`. Neither
class reads a clock, a socket or a device: every call takes `now_ms`, so tests can play
out a night on the radio in microseconds.

Rules (issue 7): first come, first served; priorities normal < supervisor < command <
emergency (as in 3GPP MCPTT, an emergency call outranks every other, the dispatcher's
included); a higher priority pre-empts a lower one; the floor is released when the holder
releases, falls silent for `silence_release_ms` (not the command center, which may hold a
group quiet), holds it longer than `max_hold_ms`, or goes offline (its last-will). An
emergency holder is released by silence like anyone else: any unit may claim emergency,
and nothing can pre-empt it, so a silent one must not keep a group (the dispatcher's
included) for the whole maximum hold; a caller who pauses presses again and gets it back
at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Priority(enum.IntEnum):
    """Higher wins. An emergency outranks the command center (MCPTT's emergency call)."""

    NORMAL = 0
    SUPERVISOR = 1
    COMMAND = 2
    EMERGENCY = 3

    @classmethod
    def parse(cls, name: str) -> Priority:
        """'normal' | 'supervisor' | 'command' | 'emergency' → Priority; ValueError otherwise."""
        try:
            return cls[name.upper()]
        except (KeyError, AttributeError):
            raise ValueError(f"priority must be one of {', '.join(PRIORITY_NAMES)}, got {name!r}") from None


PRIORITY_NAMES = ("normal", "supervisor", "command", "emergency")


class Event(enum.StrEnum):
    """What just happened to the floor (carried in the floor state message)."""

    GRANT = "grant"
    DENY = "deny"
    PREEMPT = "preempt"  # the previous holder was cut by a higher priority
    RELEASE = "release"
    SILENCE = "silence"  # holder silent for too long
    TIMEOUT = "timeout"  # holder kept the floor longer than max_hold_ms
    OFFLINE = "offline"  # holder's last-will fired
    IDLE = "idle"  # nothing happened yet (a fresh arbiter's state)


@dataclass(frozen=True)
class Holder:
    unit: str
    priority: Priority
    spurt: int
    since_ms: float


@dataclass(frozen=True)
class Decision:
    """The outcome of one request or release: the new holder and what happened."""

    event: Event
    unit: str  # the unit the event concerns (requester, releaser, or cut holder)
    spurt: int
    holder: Holder | None
    cut: Holder | None = None  # the holder that lost the floor by pre-emption


class FloorPolicy:
    """The floor of one talk group."""

    def __init__(self, silence_release_ms: float = 2000.0, max_hold_ms: float = 65000.0,
                 silence_exempt: Priority | None = Priority.COMMAND) -> None:
        if silence_release_ms <= 0 or max_hold_ms <= 0:
            raise ValueError("silence_release_ms and max_hold_ms must be positive")
        self.silence_release_ms = silence_release_ms
        self.max_hold_ms = max_hold_ms
        # The command center may hold a group quiet (the dashboard's "take the floor" sends
        # no audio); it is still released by max_hold_ms, its release or its last-will.
        self.silence_exempt = silence_exempt
        self.holder: Holder | None = None
        self._last_audio_ms = 0.0

    def request(self, unit: str, priority: Priority, spurt: int, now_ms: float) -> Decision:
        """A unit asks for the floor."""
        current = self.holder
        if current is None or current.unit == unit:
            # Free, or the holder asks again (a repeated request after a reconnect, or a
            # new spurt right after its own): grant, keeping it first-come first-served.
            return self._grant(unit, priority, spurt, now_ms, cut=None)
        if priority > current.priority:
            return self._grant(unit, priority, spurt, now_ms, cut=current)
        return Decision(Event.DENY, unit, spurt, current)

    def release(self, unit: str, spurt: int, now_ms: float) -> Decision | None:
        """The holder lets go; None when `unit` does not hold the floor (nothing changes).

        spurt 0 releases whatever spurt the unit holds (used by last-will paths).
        """
        current = self.holder
        if current is None or current.unit != unit or (spurt and current.spurt != spurt):
            return None
        self.holder = None
        return Decision(Event.RELEASE, unit, current.spurt, None)

    def offline(self, unit: str, now_ms: float) -> Decision | None:
        """The unit's last-will fired: free the floor if it held it."""
        current = self.holder
        if current is None or current.unit != unit:
            return None
        self.holder = None
        return Decision(Event.OFFLINE, unit, current.spurt, None)

    def adopt(self, unit: str, priority: Priority, spurt: int, now_ms: float) -> bool:
        """Take over a holder an earlier arbiter granted (from the retained state).

        Only when this policy has no holder; the silence clock starts now, so a holder that
        is no longer talking is released as usual. Returns True when adopted.
        """
        if self.holder is not None:
            return False
        self.holder = Holder(unit, priority, spurt, now_ms)
        self._last_audio_ms = now_ms
        return True

    def audio(self, unit: str, spurt: int, now_ms: float) -> bool:
        """Audio arrived from `unit`; True when it holds the floor for that spurt."""
        current = self.holder
        if current is not None and current.unit == unit and current.spurt == spurt:
            self._last_audio_ms = now_ms
            return True
        return False

    def tick(self, now_ms: float) -> Decision | None:
        """Called regularly: releases a silent or over-long holder."""
        current = self.holder
        if current is None:
            return None
        exempt = current.priority == self.silence_exempt
        if not exempt and now_ms - self._last_audio_ms >= self.silence_release_ms:
            self.holder = None
            return Decision(Event.SILENCE, current.unit, current.spurt, None)
        if now_ms - current.since_ms >= self.max_hold_ms:
            self.holder = None
            return Decision(Event.TIMEOUT, current.unit, current.spurt, None)
        return None

    def _grant(self, unit: str, priority: Priority, spurt: int, now_ms: float,
               cut: Holder | None) -> Decision:
        self.holder = Holder(unit, priority, spurt, now_ms)
        # The silence clock starts at the grant: a unit that is granted and never talks
        # loses the floor after silence_release_ms like one that stopped talking.
        self._last_audio_ms = now_ms
        return Decision(Event.PREEMPT if cut else Event.GRANT, unit, spurt, self.holder, cut)


class LbtVerdict(enum.StrEnum):
    WAIT = "wait"  # keep listening
    GRANT = "grant"  # the group was quiet long enough: talk
    BUSY = "busy"  # someone is talking: busy tone


class ListenBeforeTalk:
    """The unit's own decision when no arbiter answers: talk after `quiet_ms` of silence.

    `heard(now)` is called for every valid audio frame heard on the group. After a press,
    `decide(now)` says WAIT until the group has been quiet for `quiet_ms` since the press
    (GRANT), or BUSY as soon as someone else is heard during that window or was heard
    less than `quiet_ms` before the press.
    """

    def __init__(self, quiet_ms: float = 500.0) -> None:
        if quiet_ms <= 0:
            raise ValueError("quiet_ms must be positive")
        self.quiet_ms = quiet_ms
        self._last_heard_ms: float | None = None
        self._pressed_ms: float | None = None

    def heard(self, now_ms: float) -> None:
        self._last_heard_ms = now_ms

    def press(self, now_ms: float) -> None:
        self._pressed_ms = now_ms

    def decide(self, now_ms: float) -> LbtVerdict:
        if self._pressed_ms is None:
            raise RuntimeError("decide() before press()")
        last = self._last_heard_ms
        if last is not None and now_ms - last < self.quiet_ms:
            return LbtVerdict.BUSY
        if now_ms - self._pressed_ms >= self.quiet_ms:
            return LbtVerdict.GRANT
        return LbtVerdict.WAIT
