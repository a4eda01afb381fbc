"""The unit's talk-group client: the pure transmit machine and receiver, driven by MQTT
and the unit's threads.

    press ─▶ floor request ─▶ grant: go-ahead tone, capture, one MQTT message per frame
                             └▶ deny: busy tone (and the RX LED blinks)
                             └▶ no answer within request_timeout_ms, or the arbiter is
                                offline: listen-before-talk (talk after lbt_ms of silence)
    release ─▶ END frame (listeners hear a roger beep) and floor release

The decisions live in two pure classes, tested without a broker: `gateway.transmit`
(button, floor and time events in, actions out) and `gateway.receiver` (frames in, one
frame of PCM per playout tick out: jitter buffers, Opus, tones, who may be heard). This
module only carries events to them and their actions out: floor requests and audio
frames to the broker, tones and PCM to the speaker, LEDs and traces to the hooks.

Threads: paho's network thread runs the handlers; one playout thread feeds the speaker
one frame every `frame_ms` (or the caller's clock calls `tick()`); one capture thread
runs per transmission; a timer thread lives while the transmit machine has a deadline
(request time-out, listen-before-talk, transmit time-out). `_lock` serialises the
transmit machine, `_rx_lock` the receiver (taken in that order when both are needed).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway import tones
from gateway.announce import Admitted, Announcement, AnnouncementFilter
from gateway.codec import CodecError, CodecParams, Encoder
from gateway.errors import BadAnnouncement, BadFloorMessage, BadFrame
from gateway.messages import FloorRequest, FloorState
from gateway.packet import Frame
from gateway.ratelimit import due as _due
from gateway.receiver import Heard, Output, Played, Receiver, RxEnd, RxStart
from gateway.scan import AnnouncementPlayed, Scanner, ScanSwitched
from gateway.scan import order as scan_order
from gateway.transmit import Action, Deny, Grant, Mode, Request, Stop, TransmitMachine, Tx
from posko import topics
from posko.mqtt import MqttLink
from posko.settings.ptt import PttSettings

log = logging.getLogger(__name__)

__all__ = ["Counters", "Hooks", "Mode", "Sink", "Source", "TalkGroupClient", "Tx"]


class Source(Protocol):
    def read(self) -> bytes | None: ...
    def close(self) -> None: ...


class Sink(Protocol):
    def write(self, pcm: bytes) -> None: ...
    def close(self) -> None: ...


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


@dataclass
class Hooks:
    """What the panel, the terminal client and the bench want to hear about."""

    tx: Callable[[bool], None] = _noop  # transmitting on/off (red LED)
    rx: Callable[[bool], None] = _noop  # receiving on/off (green LED)
    busy: Callable[[], None] = _noop  # request denied (blink the green LED)
    online: Callable[[bool], None] = _noop  # link to the broker up/down
    talker: Callable[[str | None], None] = _noop  # who holds the floor now
    cut: Callable[[str], None] = _noop  # our transmission was cut: reason
    rx_audio: Callable[[str, int, bytes], None] = _noop  # (unit, spurt, pcm) as played
    rx_end: Callable[[str, int], None] = _noop  # (unit, spurt) finished
    # An announcement to speak (admitted: fresh, not a duplicate) in a group this unit
    # hears; the unit synthesises it and hands the PCM to queue_announcement().
    announce: Callable[[Admitted], None] = _noop
    trace: Callable[..., None] = _noop  # (event, **fields) for the bench


@dataclass
class Counters:
    bad_frames: int = 0
    unauthorised_frames: int = 0
    own_frames: int = 0  # our own audio the broker sent back (No Local should make it 0)
    bad_states: int = 0
    decode_errors: int = 0
    spurts_heard: int = 0
    spurts_sent: int = 0
    grants: int = 0
    denials: int = 0
    cuts: int = 0
    lbt_grants: int = 0
    scan_preemptions: int = 0  # a higher scanned group took the speaker from a lower one
    announcements: int = 0  # admitted (fresh, not duplicates)
    announcements_refused: int = 0  # stale, duplicate or malformed
    announcements_spoken: int = 0
    unauthorised_units: dict[str, int] = field(default_factory=dict)


class TalkGroupClient:
    """One unit: it talks in one talk group at a time (`group`, the selected one) and hears
    that group and the groups it scans (`scan`, highest priority first; gateway.scan)."""

    def __init__(self, link: MqttLink, unit: str, ptt: PttSettings, *,
                 source_factory: Callable[[], Source], sink: Sink,
                 speech_gate: threading.Event | None = None, hooks: Hooks | None = None,
                 group: str | None = None, priority: str | None = None,
                 play_tones: bool = True, scan: list[str] | None = None) -> None:
        self.link = link
        self.unit = topics.check_id("unit", unit)
        self.ptt = ptt
        self.root = link.root
        self.params = CodecParams(frame_ms=ptt.frame_ms, bitrate_bps=ptt.bitrate_bps)
        self.source_factory = source_factory
        self.sink = sink
        self.speech_gate = speech_gate if speech_gate is not None else threading.Event()
        self.hooks = hooks or Hooks()
        self.priority = priority or ptt.priority
        self.play_tones = play_tones
        self.group = topics.check_id("group", group or ptt.group)
        self.scan = [topics.check_id("group", g) for g in (ptt.scan if scan is None else scan)]
        self.counters = Counters()
        self._lock = threading.RLock()
        self._rx_lock = threading.Lock()
        self._machine = TransmitMachine(self.unit, request_timeout_ms=ptt.request_timeout_ms,
                                        lbt_ms=ptt.lbt_ms, tx_timeout_ms=ptt.tx_timeout_s * 1000.0)
        self._scanner = Scanner(self.unit, scan_order(self.group, self.scan), self.params,
                                jitter_start_ms=ptt.jitter_start_ms,
                                jitter_max_ms=ptt.jitter_max_ms, play_tones=play_tones)
        self._announce_filter = AnnouncementFilter(ptt.announce_max_age_s)
        self._rx_groups: set[str] = set()  # groups with a spurt being received (green LED)
        self._stop_reasons: dict[int, str] = {}  # spurt -> why its transmission stopped
        self._capture: threading.Thread | None = None
        self._timer: threading.Thread | None = None
        self._timer_wake = threading.Event()
        self._armed: float | None = None  # the deadline the timer thread was told of
        self._warned: dict[str, float] = {}
        self._connected = False
        self._stop = threading.Event()
        self._wake = threading.Event()  # something to play (or do) for an idle playout thread
        self._playout: threading.Thread | None = None
        self._rng = random.SystemRandom()

    # --- life cycle ---------------------------------------------------------------
    def start(self, *, playout_thread: bool = True) -> TalkGroupClient:
        """Subscribe and start playing. Without `playout_thread` the caller's clock calls
        `tick()` every frame instead (one clock driving many units in a load generator)."""
        self.link.subscribe(topics.arbiter_status(self.root), self._on_arbiter, qos=1)
        for group in self._scanner.groups:
            self._subscribe(group)
        if playout_thread:
            self._playout = threading.Thread(target=self._playout_loop, name="ptt-playout", daemon=True)
            self._playout.start()
        return self

    def stop(self) -> None:
        self.release()
        self._stop.set()
        self._wake.set()
        self._timer_wake.set()
        for thread in (self._capture, self._playout, self._timer):
            if thread is not None:
                thread.join(2)
        for group in self._scanner.groups:
            self._unsubscribe(group)
        self.link.unsubscribe(topics.arbiter_status(self.root))
        self.speech_gate.clear()

    def _subscribe(self, group: str) -> None:
        # No Local: the broker does not send this unit's own frames back (half the
        # downlink of a talker, for frames it would only drop).
        self.link.subscribe(topics.group_audio(group, self.root), self._on_audio, qos=0,
                            no_local=True)
        self.link.subscribe(topics.tg_floor_state(group, self.root), self._on_state, qos=1)
        self.link.subscribe(topics.tg_announce(group, self.root), self._on_announce, qos=1)

    def _unsubscribe(self, group: str) -> None:
        self.link.unsubscribe(topics.group_audio(group, self.root))
        self.link.unsubscribe(topics.tg_floor_state(group, self.root))
        self.link.unsubscribe(topics.tg_announce(group, self.root))

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups this unit hears, highest priority first (the selected one included)."""
        return self._scanner.groups

    @property
    def _receiver(self) -> Receiver:
        """The receiver of the selected group."""
        rx = self._scanner.receiver(self.group)
        assert rx is not None
        return rx

    def set_group(self, group: str) -> None:
        """Talk in another group (ending a transmission). The scanned groups are still heard;
        the old group stays heard only if it is scanned."""
        topics.check_id("group", group)
        self.release()
        with self._lock:
            self.group = group
            with self._rx_lock:
                before = self._scanner.groups
                self._scanner.set_groups(scan_order(group, self.scan))
                after = self._scanner.groups
        for gone in (g for g in before if g not in after):
            self._unsubscribe(gone)
        for new in (g for g in after if g not in before):
            self._subscribe(new)

    @property
    def mode(self) -> Mode:
        return self._machine.mode(self.link.connected.is_set())

    @property
    def tx(self) -> Tx:
        return self._machine.state

    def status(self) -> dict[str, Any]:
        """For the unit's heartbeat (`parts.ptt`)."""
        state = self._receiver.state
        c = self.counters
        return {"group": self.group, "scan": list(self.scan), "hearing": self._scanner.current or "",
                "mode": self.mode.value, "tx": self.tx.value,
                "holder": state.holder if state else "", "talker": self._receiver.current or "",
                "arbiter_online": self._machine.arbiter_online, "priority": self.priority,
                "half_duplex": self.ptt.half_duplex,
                "counters": {k: v for k, v in c.__dict__.items() if k != "unauthorised_units"},
                "unauthorised_units": dict(c.unauthorised_units)}

    # --- the button ---------------------------------------------------------------
    def press(self) -> None:
        """The PTT button went down."""
        with self._lock:
            connected = self.link.connected.is_set()
            if self._machine.state is Tx.IDLE and connected:
                spurt = self._rng.randrange(1, 1 << 32)
                self.hooks.trace("press", spurt=spurt, t=time.time())
            else:
                spurt = 0
            self._apply(self._machine.press(_now_ms(), spurt, connected))

    def release(self) -> None:
        """The PTT button came up."""
        with self._lock:
            self._apply(self._machine.release(_now_ms(), self.link.connected.is_set()))

    # --- carrying out the transmit machine's actions (with _lock held) -------------
    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Request):
                self._publish_request(action.action, action.spurt)
            elif isinstance(action, Grant):
                self._granted(action)
            elif isinstance(action, Deny):
                self.counters.denials += 1
                self.hooks.trace("deny", spurt=action.spurt, why=action.why, t=time.time())
                self._queue_tone(tones.busy())
                self.hooks.busy()
            elif isinstance(action, Stop):
                self._stopped(action)
        self._arm_timer()

    def _publish_request(self, action: str, spurt: int) -> None:
        req = FloorRequest(action=action, spurt=spurt, priority=self.priority)
        self.link.publish(topics.tg_floor_request(self.group, self.unit, self.root),
                          req.to_json(), qos=1)

    def _granted(self, grant: Grant) -> None:
        self.counters.grants += 1
        if grant.mode is Mode.LBT:
            self.counters.lbt_grants += 1
        self.hooks.trace("grant", spurt=grant.spurt, mode=grant.mode.value,
                         grant_ms=grant.grant_ms, t=time.time())
        go = tones.go_ahead()
        self._queue_tone(go)
        self.hooks.tx(True)
        delay_s = len(go) / (2 * 16000) if self.play_tones else 0.0
        self._capture = threading.Thread(target=self._capture_loop, args=(grant.spurt, delay_s),
                                         name="ptt-capture", daemon=True)
        self._capture.start()

    def _stopped(self, stop: Stop) -> None:
        """The capture loop sees the machine leave TALKING and sends END and the release."""
        self._stop_reasons[stop.spurt] = stop.reason
        self.hooks.tx(False)
        if stop.cut:
            self.counters.cuts += 1
            self._queue_tone(tones.cut())
            self.hooks.cut(stop.reason)
            log.info("ptt: transmission cut (%s)", stop.reason)

    def _arm_timer(self) -> None:
        """Make sure the machine's next deadline is kept (called with _lock held). The
        timer thread is started at the first deadline (a unit that only listens never
        needs one) and then waits for the next for as long as the client runs."""
        deadline = self._machine.deadline_ms()
        if deadline == self._armed:
            return
        self._armed = deadline
        if self._timer is None:
            if deadline is None:
                return
            self._timer = threading.Thread(target=self._timer_loop, name="ptt-timer", daemon=True)
            self._timer.start()
        else:
            self._timer_wake.set()

    def _timer_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                deadline = self._machine.deadline_ms()
                now = _now_ms()
                if deadline is not None and now >= deadline:
                    self._apply(self._machine.tick(now))
                    continue
                self._timer_wake.clear()
            self._timer_wake.wait(None if deadline is None else (deadline - now) / 1000.0)

    # --- transmit -----------------------------------------------------------------
    def _talking(self, spurt: int) -> bool:
        return self._machine.state is Tx.TALKING and self._machine.spurt == spurt

    def _capture_loop(self, spurt: int, delay_s: float) -> None:
        frame_s = self.params.frame_ms / 1000.0
        deadline = time.monotonic() + delay_s
        while time.monotonic() < deadline:  # the talker hears the go-ahead tone first
            if not self._talking(spurt):
                break
            time.sleep(0.005)
        source: Source | None = None
        n = 0
        seq0 = self._rng.randrange(0, 1 << 16)
        topic = topics.tg_audio(self.group, self.unit, self.root)
        try:
            source = self.source_factory()
            encoder = Encoder(self.params)
            t0 = time.monotonic()
            while self._talking(spurt):
                pcm = source.read()
                if pcm is None:
                    with self._lock:
                        self._apply(self._machine.source_ended(spurt))
                    break
                captured = time.time()
                frame = Frame(seq=(seq0 + n) & 0xFFFF, timestamp=(n * self.params.samples) & 0xFFFFFFFF,
                              spurt=spurt, payload=encoder.encode(pcm), start=n == 0)
                self.link.publish_stream(topic, frame.to_bytes(), qos=0)
                self.hooks.trace("tx", spurt=spurt, seq=frame.seq, t=captured,
                                 bytes=len(frame.payload))
                n += 1
                delay = t0 + n * frame_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except (OSError, CodecError) as exc:  # a sound device failing is an OSError
            log.error("ptt: transmission failed: %s", exc)
            with self._lock:
                self._apply(self._machine.device_failed(spurt))
        finally:
            if source is not None:
                source.close()
        # End of spurt: listeners play the roger beep; the arbiter frees the floor.
        end = Frame(seq=(seq0 + n) & 0xFFFF, timestamp=(n * self.params.samples) & 0xFFFFFFFF,
                    spurt=spurt, end=True)
        if self.link.connected.is_set():
            self.link.publish(topic, end.to_bytes(), qos=0)
            self._publish_request("release", spurt)
        self.counters.spurts_sent += 1
        with self._lock:
            reason = self._stop_reasons.pop(spurt, "")
        self.hooks.trace("tx_end", spurt=spurt, frames=n, reason=reason, t=time.time())

    # --- MQTT handlers (paho network thread) --------------------------------------
    def _on_arbiter(self, topic: str, payload: bytes) -> None:
        try:
            state = json.loads(payload).get("state")
        except (ValueError, AttributeError):
            return
        online = state == "online"
        if online != self._machine.arbiter_online:
            log.info("ptt: arbiter %s", "online" if online else "offline: listen-before-talk")
        with self._lock:
            self._apply(self._machine.arbiter(online))
            with self._rx_lock:
                self._scanner.arbiter(online)

    def _on_state(self, topic: str, payload: bytes) -> None:
        try:
            state = FloorState.from_json(payload)
        except BadFloorMessage:
            self.counters.bad_states += 1
            return
        with self._lock:
            with self._rx_lock:
                if not self._scanner.floor(state):
                    return  # a group this unit no longer hears
            if state.group != self.group:
                return  # a scanned group: heard, never talked in
            self._apply(self._machine.floor(state, _now_ms()))
        self.hooks.talker(state.holder or None)

    def _on_audio(self, topic: str, payload: bytes) -> None:
        levels = topic.rsplit("/", 3)  # [..., group, "audio", unit]
        unit = levels[-1]
        if unit == self.unit:
            self.counters.own_frames += 1  # our own echo: the subscription's No Local failed
            return
        group = levels[-3] if len(levels) >= 4 else ""
        if group not in self._scanner.groups:
            return  # a straggler of a group we just left
        try:
            frame = Frame.from_bytes(payload)
        except BadFrame:
            self.counters.bad_frames += 1
            return
        now = _now_ms()
        if group == self.group:  # listen-before-talk listens to the group it talks in
            with self._lock:
                self._apply(self._machine.heard(now))
        with self._rx_lock:
            heard = self._scanner.push(group, unit, frame, now)
        if heard is None:
            return
        if heard is Heard.UNAUTHORISED:
            self.counters.unauthorised_frames += 1
            units = self.counters.unauthorised_units
            units[unit] = units.get(unit, 0) + 1
            if _due(self._warned, unit):
                log.warning("ptt: %s sends audio in %s without the floor; ignored", unit, group)
            return
        if heard is not Heard.ACCEPTED:
            return
        if not self._wake.is_set():  # set() takes a lock and notifies: once is enough
            self._wake.set()
        if self.hooks.trace is not _noop:
            self.hooks.trace("rx", unit=unit, group=group, spurt=frame.spurt, seq=frame.seq,
                             t=time.time())

    # --- playout ------------------------------------------------------------------
    def _queue_tone(self, pcm: bytes) -> None:
        if not self.play_tones:
            return
        with self._rx_lock:
            self._scanner.queue_tone(pcm)
        self._wake.set()

    # --- announcements ------------------------------------------------------------
    def _on_announce(self, topic: str, payload: bytes) -> None:
        levels = topic.rsplit("/", 2)  # [..., group, "announce"]
        group = levels[-2] if len(levels) == 3 else ""
        if group not in self._scanner.groups:
            return
        try:
            ann = Announcement.from_json(group, payload)
        except BadAnnouncement as exc:
            self.counters.announcements_refused += 1
            log.warning("ptt: %s in %s ignored", exc, group)
            return
        with self._rx_lock:
            admitted = self._announce_filter.admit(ann, time.time(), _now_ms())
        if isinstance(admitted, str):
            self.counters.announcements_refused += 1
            log.info("ptt: %s announcement in %s from %s not spoken", admitted, group, ann.sender)
            self.hooks.trace("announce_refused", group=group, why=admitted, t=time.time())
            return
        self.counters.announcements += 1
        self.hooks.trace("announce", group=group, sender=ann.sender, t=time.time())
        self.hooks.announce(admitted)

    def queue_announcement(self, admitted: Admitted, speech: bytes) -> None:
        """Play the alert tone and `speech` (16 kHz mono int16, may be empty) when every floor
        this unit hears is free (gateway.scan)."""
        ann = admitted.announcement
        with self._rx_lock:
            self._scanner.queue_announcement(ann.key, ann.group, speech, admitted.expires_ms)
        self._wake.set()

    def _playout_loop(self) -> None:
        frame_s = self.params.frame_ms / 1000.0
        next_t = time.monotonic()
        # Sample 0 of the speaker's output is played now: lets a test line up what was
        # played with when it was said.
        self.hooks.trace("playout_start", t=time.time())
        # A sink that need not be fed silence (a unit's speaker that closes when quiet, a
        # headless listener) lets this thread sleep while nothing happens instead of
        # waking 50 times a second; audio, a tone or a press wakes it at once.
        continuous = getattr(self.sink, "continuous", True)
        while not self._stop.is_set():
            self.tick()
            if not continuous and self._idle():
                self._wake.clear()
                if self._idle():  # nothing arrived between the check and the clear
                    self._wake.wait(0.25)
                next_t = time.monotonic()
                continue
            next_t += frame_s
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.2:  # a long stall (suspended process): do not race to catch up
                next_t = time.monotonic()

    def tick(self) -> None:
        """One frame of playout: the next frame (or silence) to the speaker."""
        self._watch_link()
        muted = self.ptt.half_duplex and self._machine.state is Tx.TALKING
        with self._rx_lock:
            out = self._scanner.pull(_now_ms(), muted)
        self._report(out)
        try:
            self.sink.write(out.pcm)
        except OSError as exc:  # the speaker failed (the unit's AudioDeviceError)
            log.error("ptt: %s", exc)

    def _report(self, out: Output) -> None:
        """The receiver's events to the speech gate, counters and hooks."""
        if out.speaking:
            if not self.speech_gate.is_set():
                self.speech_gate.set()
        elif self.speech_gate.is_set():
            self.speech_gate.clear()
        for event in out.events:
            if isinstance(event, Played):
                if event.error:
                    self.counters.decode_errors += 1
                self.hooks.rx_audio(event.unit, event.spurt, event.pcm)
                if self.hooks.trace is not _noop:
                    self.hooks.trace("play", unit=event.unit, group=event.group, spurt=event.spurt,
                                     seq=event.seq, action=event.action.value, t=time.time())
            elif isinstance(event, RxStart):
                self.counters.spurts_heard += 1
                if not self._rx_groups:
                    self.hooks.rx(True)
                self._rx_groups.add(event.group)
            elif isinstance(event, RxEnd):
                self._rx_groups.discard(event.group)
                if not self._rx_groups:
                    self.hooks.rx(False)
                self.hooks.rx_end(event.unit, event.spurt)
                if not event.cut:
                    self.hooks.trace("rx_end", unit=event.unit, group=event.group,
                                     spurt=event.spurt, t=time.time())
            elif isinstance(event, ScanSwitched):
                if event.why == "preempt":
                    self.counters.scan_preemptions += 1
                self.hooks.trace("scan", before=event.before, after=event.after, why=event.why,
                                 t=time.time())
            elif isinstance(event, AnnouncementPlayed):
                if event.what == "done":
                    self.counters.announcements_spoken += 1
                self.hooks.trace("announce_" + event.what, group=event.group, t=time.time())

    def _idle(self) -> bool:
        """Nothing to play, nothing buffered, not transmitting."""
        with self._rx_lock:
            return self._machine.state is Tx.IDLE and self._scanner.idle

    def _watch_link(self) -> None:
        connected = self.link.connected.is_set()
        if connected == self._connected:
            return
        self._connected = connected
        self.hooks.online(connected)
        with self._lock:
            self._apply(self._machine.link(connected))


def _now_ms() -> float:
    return time.monotonic() * 1000.0
