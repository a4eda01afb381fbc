"""The unit's transmit side as pure logic: button and floor events in, actions out.

    press ─▶ REQUESTING ─▶ floor state "mine": Grant (go-ahead tone, capture)
                        └▶ deny for this spurt: Deny (busy tone)
                        └▶ no answer within request_timeout_ms: LISTENING
    press with the arbiter known offline ─▶ LISTENING: talk after lbt_ms of silence,
                                            Deny as soon as someone is heard
    TALKING ─▶ release, end of the microphone's input, a device failure, pre-emption or
               another holder, tx_timeout_s, the link dropping: Stop(reason)

`TransmitMachine` reads no clock, opens no socket or device and starts no thread: every
event takes `now_ms` (a monotonic clock in milliseconds) and returns the actions the caller
must carry out, in order. `deadline_ms()` says when `tick()` must be called next (a request
time-out, the end of a listen-before-talk window, the transmit time-out), so the caller
needs no polling. The spurt id is chosen by the caller (it holds the random source).
`gateway.client.TalkGroupClient` drives it with the MQTT link and the unit's threads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.floor import LbtVerdict, ListenBeforeTalk
from gateway.messages import FloorState


class Tx(enum.StrEnum):
    IDLE = "idle"
    REQUESTING = "requesting"  # asked the arbiter, waiting for its answer
    LISTENING = "listening"  # listen-before-talk: waiting for silence on the group
    TALKING = "talking"


class Mode(enum.StrEnum):
    ARBITER = "arbiter"
    LBT = "listen-before-talk"
    OFFLINE = "offline"


# Reasons a transmission stops that are the talker's own doing: no cut tone for these.
OWN_STOPS = frozenset({"release", "eof"})


@dataclass(frozen=True)
class Request:
    """Publish a floor request (`action` "request" or "release") for `spurt`."""

    action: str
    spurt: int


@dataclass(frozen=True)
class Grant:
    """The floor is ours: play the go-ahead tone and start capturing `spurt`."""

    spurt: int
    mode: Mode
    grant_ms: float  # from the press to this grant


@dataclass(frozen=True)
class Deny:
    """No floor: busy tone. `why` is "busy" or "offline"."""

    spurt: int
    why: str


@dataclass(frozen=True)
class Stop:
    """End the transmission of `spurt`: stop capturing, then send its END frame and the
    floor release (the capture loop does both, after its last audio frame)."""

    spurt: int
    reason: str  # release, eof, device, timeout, link, preempted, or the floor event

    @property
    def cut(self) -> bool:
        """Cut from outside (pre-emption, time-out, link, device): the cut tone plays."""
        return self.reason not in OWN_STOPS


Action = Request | Grant | Deny | Stop


class TransmitMachine:
    """The floor state machine of one unit in one group.

    request_timeout_ms: a request unanswered for this long falls back to listen-before-talk.
    lbt_ms: listen-before-talk's quiet period. tx_timeout_ms: a transmission is cut after
    this long (all in ms). Raises ValueError for a time-out that is not positive (and
    `ListenBeforeTalk` for lbt_ms). Not thread-safe: the caller serialises events (one lock).
    """

    def __init__(self, unit: str, *, request_timeout_ms: float, lbt_ms: float,
                 tx_timeout_ms: float) -> None:
        if request_timeout_ms <= 0 or tx_timeout_ms <= 0:
            raise ValueError("request_timeout_ms and tx_timeout_ms must be positive")
        self.unit = unit
        self.request_timeout_ms = request_timeout_ms
        self.tx_timeout_ms = tx_timeout_ms
        self.state = Tx.IDLE
        self.tx_mode = Mode.ARBITER  # how the transmission in progress got its floor
        self.spurt = 0  # spurt of the request or transmission in progress (or the last one)
        self.press_ms = 0.0
        self.talk_ms = 0.0  # when the current transmission was granted
        self.arbiter_online: bool | None = None  # None: not heard yet
        self._lbt = ListenBeforeTalk(lbt_ms)
        self._lbt_deadline = 0.0

    # --- what the unit is doing ---------------------------------------------------
    def mode(self, connected: bool) -> Mode:
        if not connected:
            return Mode.OFFLINE
        if self.state is Tx.TALKING:
            return self.tx_mode
        # Until the arbiter's retained presence says "online", floor requests may go
        # unanswered and the unit talks by listen-before-talk.
        return Mode.ARBITER if self.arbiter_online else Mode.LBT

    def deadline_ms(self) -> float | None:
        """When `tick()` has something to decide, None when nothing is timed."""
        if self.state is Tx.REQUESTING:
            return self.press_ms + self.request_timeout_ms
        if self.state is Tx.LISTENING:
            return self._lbt_deadline
        if self.state is Tx.TALKING:
            return self.talk_ms + self.tx_timeout_ms
        return None

    # --- events -------------------------------------------------------------------
    def press(self, now_ms: float, spurt: int, connected: bool) -> list[Action]:
        """The PTT button went down; `spurt` is the new transmission's id (1..2**32-1)."""
        if self.state is not Tx.IDLE:
            return []
        self.press_ms = now_ms
        if not connected:
            return [self._deny("offline")]
        self.spurt = spurt
        if self.arbiter_online is False:
            return self._listen(now_ms, now_ms)
        self.state = Tx.REQUESTING
        return [Request("request", spurt)]

    def release(self, now_ms: float, connected: bool) -> list[Action]:
        """The PTT button came up."""
        if self.state in (Tx.REQUESTING, Tx.LISTENING):
            self.state = Tx.IDLE
            return [Request("release", self.spurt)] if connected else []
        if self.state is Tx.TALKING:
            return [self._stop("release")]
        return []

    def tick(self, now_ms: float) -> list[Action]:
        """Time passed: request time-out, the listen-before-talk verdict, transmit time-out."""
        if self.state is Tx.REQUESTING and now_ms >= self.press_ms + self.request_timeout_ms:
            # No answer: the arbiter is gone (or not there yet). The quiet period counts
            # from the press, so the total wait stays about lbt_ms.
            return self._listen(self.press_ms, now_ms)
        if self.state is Tx.LISTENING:
            return self._decide(now_ms)
        if self.state is Tx.TALKING and now_ms >= self.talk_ms + self.tx_timeout_ms:
            return [self._stop("timeout")]
        return []

    def heard(self, now_ms: float) -> list[Action]:
        """A valid audio frame from another unit was heard on the group."""
        self._lbt.heard(now_ms)
        if self.state is Tx.LISTENING:
            return self._decide(now_ms)
        return []

    def arbiter(self, online: bool) -> list[Action]:
        """The arbiter's retained presence changed."""
        self.arbiter_online = online
        return []

    def floor(self, state: FloorState, now_ms: float) -> list[Action]:
        """The arbiter's floor state of this unit's group."""
        mine = state.holder == self.unit and state.spurt == self.spurt
        waiting = self.state in (Tx.REQUESTING, Tx.LISTENING)
        if waiting and mine:
            return [self._grant(Mode.ARBITER, now_ms)]
        if (waiting and state.event == "deny" and state.event_unit == self.unit
                and state.event_spurt == self.spurt):
            return [self._deny("busy")]
        if self.state is Tx.TALKING and self.tx_mode is Mode.ARBITER and not mine:
            return [self._stop("preempted" if state.event == "preempt" else state.event)]
        return []

    def source_ended(self, spurt: int) -> list[Action]:
        """The microphone (a file) has no more audio for `spurt`."""
        return self._stop_if(spurt, "eof")

    def device_failed(self, spurt: int) -> list[Action]:
        """The microphone or the encoder failed during `spurt`."""
        return self._stop_if(spurt, "device")

    def link(self, connected: bool) -> list[Action]:
        """The broker connection went up or down; a transmission is cut when it drops."""
        if connected:
            return []
        if self.state is Tx.TALKING:
            return [self._stop("link")]
        self.state = Tx.IDLE  # a request or listen in progress is dropped quietly
        return []

    # --- transitions --------------------------------------------------------------
    def _listen(self, pressed_ms: float, now_ms: float) -> list[Action]:
        self.state = Tx.LISTENING
        self._lbt.press(pressed_ms)
        self._lbt_deadline = pressed_ms + self._lbt.quiet_ms
        return self._decide(now_ms)

    def _decide(self, now_ms: float) -> list[Action]:
        verdict = self._lbt.decide(now_ms)
        if verdict is LbtVerdict.GRANT:
            return [self._grant(Mode.LBT, now_ms)]
        if verdict is LbtVerdict.BUSY:
            return [self._deny("busy")]
        return []

    def _grant(self, mode: Mode, now_ms: float) -> Grant:
        self.state = Tx.TALKING
        self.tx_mode = mode
        self.talk_ms = now_ms
        return Grant(self.spurt, mode, now_ms - self.press_ms)

    def _deny(self, why: str) -> Deny:
        self.state = Tx.IDLE
        return Deny(self.spurt, why)

    def _stop(self, reason: str) -> Stop:
        self.state = Tx.IDLE
        return Stop(self.spurt, reason)

    def _stop_if(self, spurt: int, reason: str) -> list[Action]:
        if self.state is Tx.TALKING and self.spurt == spurt:
            return [self._stop(reason)]
        return []
