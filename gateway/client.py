"""The unit's talk-group client: press to talk, hear the others, one talker at a time.

    press ─▶ floor request ─▶ grant: go-ahead tone, capture, one MQTT message per frame
                             └▶ deny: busy tone (and the RX LED blinks)
                             └▶ no answer within request_timeout_ms, or the arbiter is
                                offline: listen-before-talk (talk after lbt_ms of silence)
    release ─▶ END frame (listeners hear a roger beep) and floor release

Received audio goes through one jitter buffer per talker and the Opus decoder (FEC for
a lost frame when the next one is there, PLC otherwise) to the speaker, which is fed one
frame every `frame_ms` (silence when nobody talks), so the device keeps a steady clock.
Only the floor holder's audio is played; frames from a unit without the floor are
dropped, counted and reported. While radio speech plays, `speech_gate` is set so the
kiosk's speech synthesis pauses. A transmission is cut after `tx_timeout_s`; while this
unit transmits its speaker is muted (half duplex) unless configured otherwise. The MQTT
link reconnects by itself; a transmission in progress when the link drops is cut.

Threads: paho's network thread runs the handlers, one playout thread feeds the speaker,
one capture thread runs per transmission. `_lock` guards the floor state machine,
`_rx_lock` the receive side.
"""

from __future__ import annotations

import enum
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway import tones
from gateway.codec import CodecError, CodecParams, Decoder, Encoder
from gateway.errors import BadFloorMessage, BadFrame
from gateway.floor import LbtVerdict, ListenBeforeTalk
from gateway.jitter import Action, JitterBuffer
from gateway.messages import FloorRequest, FloorState
from gateway.packet import Frame
from gateway.ratelimit import due as _due
from posko import topics
from posko.mqtt import MqttLink
from posko.settings.ptt import PttSettings

log = logging.getLogger(__name__)


class Source(Protocol):
    def read(self) -> bytes | None: ...
    def close(self) -> None: ...


class Sink(Protocol):
    def write(self, pcm: bytes) -> None: ...
    def close(self) -> None: ...


class Tx(enum.StrEnum):
    IDLE = "idle"
    REQUESTING = "requesting"  # asked the arbiter, waiting for its answer
    LISTENING = "listening"  # listen-before-talk: waiting for silence on the group
    TALKING = "talking"


class Mode(enum.StrEnum):
    ARBITER = "arbiter"
    LBT = "listen-before-talk"
    OFFLINE = "offline"


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
    trace: Callable[..., None] = _noop  # (event, **fields) for the bench


@dataclass
class _Talker:
    buffer: JitterBuffer
    decoder: Decoder
    playing: bool = False


@dataclass
class Counters:
    bad_frames: int = 0
    unauthorised_frames: int = 0
    bad_states: int = 0
    decode_errors: int = 0
    spurts_heard: int = 0
    spurts_sent: int = 0
    grants: int = 0
    denials: int = 0
    cuts: int = 0
    lbt_grants: int = 0
    unauthorised_units: dict[str, int] = field(default_factory=dict)


class TalkGroupClient:
    """One unit in one talk group at a time."""

    def __init__(self, link: MqttLink, unit: str, ptt: PttSettings, *,
                 source_factory: Callable[[], Source], sink: Sink,
                 speech_gate: threading.Event | None = None, hooks: Hooks | None = None,
                 group: str | None = None, priority: str | None = None,
                 play_tones: bool = True) -> None:
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
        self.counters = Counters()
        self._lock = threading.RLock()
        self._rx_lock = threading.Lock()
        self._tx = Tx.IDLE
        self._tx_mode = Mode.ARBITER
        self._spurt = 0  # spurt of the request or transmission in progress
        self._press_ms = 0.0
        self._stop_reason = ""
        self._capture: threading.Thread | None = None
        self._state: FloorState | None = None
        self._previous: tuple[str, int] = ("", 0)  # (holder, spurt) before the current one
        self._arbiter_online: bool | None = None  # None: not heard yet
        self._lbt = ListenBeforeTalk(ptt.lbt_ms)
        self._talkers: dict[str, _Talker] = {}
        self._current: str | None = None  # whose audio the speaker plays
        self._tones: deque[bytes] = deque()
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
        self._subscribe(self.group)
        if playout_thread:
            self._playout = threading.Thread(target=self._playout_loop, name="ptt-playout", daemon=True)
            self._playout.start()
        return self

    def stop(self) -> None:
        self.release()
        self._stop.set()
        self._wake.set()
        if self._capture is not None:
            self._capture.join(2)
        if self._playout is not None:
            self._playout.join(2)
        self._unsubscribe(self.group)
        self.link.unsubscribe(topics.arbiter_status(self.root))
        self.speech_gate.clear()

    def _subscribe(self, group: str) -> None:
        self.link.subscribe(topics.group_audio(group, self.root), self._on_audio, qos=0)
        self.link.subscribe(topics.tg_floor_state(group, self.root), self._on_state, qos=1)

    def _unsubscribe(self, group: str) -> None:
        self.link.unsubscribe(topics.group_audio(group, self.root))
        self.link.unsubscribe(topics.tg_floor_state(group, self.root))

    def set_group(self, group: str) -> None:
        """Leave the current group (ending a transmission) and join another."""
        topics.check_id("group", group)
        self.release()
        with self._lock:
            old, self.group = self.group, group
            self._state = None
        with self._rx_lock:
            self._talkers.clear()
            self._current = None
        if old != group:
            self._unsubscribe(old)
            self._subscribe(group)

    @property
    def mode(self) -> Mode:
        if not self.link.connected.is_set():
            return Mode.OFFLINE
        if self._tx is Tx.TALKING:
            return self._tx_mode
        # Until the arbiter's retained presence says "online", floor requests may go
        # unanswered and the unit talks by listen-before-talk.
        return Mode.ARBITER if self._arbiter_online else Mode.LBT

    @property
    def tx(self) -> Tx:
        return self._tx

    def status(self) -> dict[str, Any]:
        """For the unit's heartbeat (`parts.ptt`)."""
        state = self._state
        c = self.counters
        return {"group": self.group, "mode": self.mode.value, "tx": self._tx.value,
                "holder": state.holder if state else "", "talker": self._current or "",
                "arbiter_online": self._arbiter_online, "priority": self.priority,
                "half_duplex": self.ptt.half_duplex,
                "counters": {k: v for k, v in c.__dict__.items() if k != "unauthorised_units"},
                "unauthorised_units": dict(c.unauthorised_units)}

    # --- the button ---------------------------------------------------------------
    def press(self) -> None:
        """The PTT button went down."""
        with self._lock:
            if self._tx is not Tx.IDLE:
                return
            now = _now_ms()
            self._press_ms = now
            if not self.link.connected.is_set():
                self._deny_locked("offline")
                return
            self._spurt = self._rng.randrange(1, 1 << 32)
            self.hooks.trace("press", spurt=self._spurt, t=time.time())
            if self._arbiter_online is False:
                self._listen_locked(now)
                return
            self._tx = Tx.REQUESTING
            spurt = self._spurt
            self._publish_request("request", spurt)
        timer = threading.Timer(self.ptt.request_timeout_ms / 1000.0, self._request_timed_out,
                                args=(spurt,))
        timer.daemon = True
        timer.start()

    def release(self) -> None:
        """The PTT button came up."""
        with self._lock:
            if self._tx in (Tx.REQUESTING, Tx.LISTENING):
                spurt = self._spurt
                self._tx = Tx.IDLE
                if self.link.connected.is_set():
                    self._publish_request("release", spurt)
            elif self._tx is Tx.TALKING:
                self._end_tx_locked("release")

    def _publish_request(self, action: str, spurt: int) -> None:
        req = FloorRequest(action=action, spurt=spurt, priority=self.priority)
        self.link.publish(topics.tg_floor_request(self.group, self.unit, self.root),
                          req.to_json(), qos=1)

    def _request_timed_out(self, spurt: int) -> None:
        with self._lock:
            if self._tx is Tx.REQUESTING and self._spurt == spurt:
                log.warning("ptt: no answer from the arbiter in %d ms; listen-before-talk",
                            self.ptt.request_timeout_ms)
                self._listen_locked(self._press_ms)

    def _listen_locked(self, pressed_ms: float) -> None:
        self._tx = Tx.LISTENING
        self._lbt.press(pressed_ms)
        spurt = self._spurt
        threading.Thread(target=self._lbt_loop, args=(spurt,), name="ptt-lbt", daemon=True).start()

    def _lbt_loop(self, spurt: int) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self._tx is not Tx.LISTENING or self._spurt != spurt:
                    return
                verdict = self._lbt.decide(_now_ms())
                if verdict is LbtVerdict.GRANT:
                    self.counters.lbt_grants += 1
                    self._begin_tx_locked(Mode.LBT)
                    return
                if verdict is LbtVerdict.BUSY:
                    self._deny_locked("busy")
                    return
            time.sleep(0.01)

    def _deny_locked(self, why: str) -> None:
        self._tx = Tx.IDLE
        self.counters.denials += 1
        self.hooks.trace("deny", spurt=self._spurt, why=why, t=time.time())
        self._queue_tone(tones.busy())
        self.hooks.busy()

    def _begin_tx_locked(self, mode: Mode) -> None:
        self._tx = Tx.TALKING
        self._tx_mode = mode
        self._stop_reason = ""
        self.counters.grants += 1
        self.hooks.trace("grant", spurt=self._spurt, mode=mode.value,
                         grant_ms=_now_ms() - self._press_ms, t=time.time())
        go = tones.go_ahead()
        self._queue_tone(go)
        self.hooks.tx(True)
        delay_s = len(go) / (2 * 16000) if self.play_tones else 0.0
        self._capture = threading.Thread(target=self._capture_loop, args=(self._spurt, delay_s),
                                         name="ptt-capture", daemon=True)
        self._capture.start()

    def _end_tx_locked(self, reason: str) -> None:
        """Stop the transmission; the capture thread sends END and the release."""
        if self._tx is not Tx.TALKING:
            return
        self._tx = Tx.IDLE
        self._stop_reason = reason
        self.hooks.tx(False)
        if reason not in ("release", "eof"):
            self.counters.cuts += 1
            self._queue_tone(tones.cut())
            self.hooks.cut(reason)
            log.info("ptt: transmission cut (%s)", reason)

    # --- transmit -----------------------------------------------------------------
    def _capture_loop(self, spurt: int, delay_s: float) -> None:
        frame_s = self.params.frame_ms / 1000.0
        deadline = time.monotonic() + delay_s
        while time.monotonic() < deadline:  # the talker hears the go-ahead tone first
            if self._tx is not Tx.TALKING or self._spurt != spurt:
                break
            time.sleep(0.005)
        source: Source | None = None
        n = 0
        seq0 = self._rng.randrange(0, 1 << 16)
        try:
            source = self.source_factory()
            encoder = Encoder(self.params)
            t0 = time.monotonic()
            while self._tx is Tx.TALKING and self._spurt == spurt:
                if time.monotonic() - t0 >= self.ptt.tx_timeout_s:
                    with self._lock:
                        self._end_tx_locked("timeout")
                    break
                pcm = source.read()
                if pcm is None:
                    with self._lock:
                        self._end_tx_locked("eof")
                    break
                captured = time.time()
                frame = Frame(seq=(seq0 + n) & 0xFFFF, timestamp=(n * self.params.samples) & 0xFFFFFFFF,
                              spurt=spurt, payload=encoder.encode(pcm), start=n == 0)
                self.link.publish_stream(topics.tg_audio(self.group, self.unit, self.root),
                                         frame.to_bytes(), qos=0)
                self.hooks.trace("tx", spurt=spurt, seq=frame.seq, t=captured,
                                 bytes=len(frame.payload))
                n += 1
                delay = t0 + n * frame_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except (OSError, CodecError) as exc:  # a sound device failing is an OSError
            log.error("ptt: transmission failed: %s", exc)
            with self._lock:
                if self._spurt == spurt:
                    self._end_tx_locked("device")
        finally:
            if source is not None:
                source.close()
        # End of spurt: listeners play the roger beep; the arbiter frees the floor.
        end = Frame(seq=(seq0 + n) & 0xFFFF, timestamp=(n * self.params.samples) & 0xFFFFFFFF,
                    spurt=spurt, end=True)
        if self.link.connected.is_set():
            self.link.publish(topics.tg_audio(self.group, self.unit, self.root), end.to_bytes(), qos=0)
            self._publish_request("release", spurt)
        self.counters.spurts_sent += 1
        self.hooks.trace("tx_end", spurt=spurt, frames=n, reason=self._stop_reason, t=time.time())

    # --- MQTT handlers (paho network thread) --------------------------------------
    def _on_arbiter(self, topic: str, payload: bytes) -> None:
        try:
            state = json.loads(payload).get("state")
        except (ValueError, AttributeError):
            return
        online = state == "online"
        if online != self._arbiter_online:
            log.info("ptt: arbiter %s", "online" if online else "offline: listen-before-talk")
        self._arbiter_online = online
        if online:
            self._tx_mode = Mode.ARBITER if self._tx is not Tx.TALKING else self._tx_mode

    def _on_state(self, topic: str, payload: bytes) -> None:
        try:
            state = FloorState.from_json(payload)
        except BadFloorMessage:
            self.counters.bad_states += 1
            return
        if state.group != self.group:
            return
        with self._lock:
            old = self._state
            if old is not None and old.holder and (old.holder, old.spurt) != (state.holder, state.spurt):
                # Frames of the spurt that just lost the floor still trail in; they are
                # dropped quietly rather than reported as a unit talking out of turn.
                self._previous = (old.holder, old.spurt)
            self._state = state
            mine = state.holder == self.unit and state.spurt == self._spurt
            if self._tx in (Tx.REQUESTING, Tx.LISTENING) and mine:
                self._begin_tx_locked(Mode.ARBITER)
            elif (self._tx in (Tx.REQUESTING, Tx.LISTENING) and state.event == "deny"
                  and state.event_unit == self.unit and state.event_spurt == self._spurt):
                self._deny_locked("busy")
            elif self._tx is Tx.TALKING and self._tx_mode is Mode.ARBITER and not mine:
                self._end_tx_locked("preempted" if state.event == "preempt" else state.event)
        self.hooks.talker(state.holder or None)

    def _on_audio(self, topic: str, payload: bytes) -> None:
        levels = topic.rsplit("/", 3)  # [..., group, "audio", unit]
        unit = levels[-1]
        if unit == self.unit or len(levels) < 4 or levels[-3] != self.group:
            return  # our own echo, or a straggler of the group we just left
        try:
            frame = Frame.from_bytes(payload)
        except BadFrame:
            self.counters.bad_frames += 1
            return
        now = _now_ms()
        self._lbt.heard(now)
        with self._rx_lock:
            if not self._authorised(unit, frame):
                if (unit, frame.spurt) == self._previous:
                    return
                self.counters.unauthorised_frames += 1
                units = self.counters.unauthorised_units
                units[unit] = units.get(unit, 0) + 1
                if _due(self._warned, unit):
                    log.warning("ptt: %s sends audio in %s without the floor; ignored", unit, self.group)
                return
            talker = self._talkers.get(unit)
            if talker is None:
                talker = _Talker(JitterBuffer(frame_ms=self.params.frame_ms,
                                              start_ms=self.ptt.jitter_start_ms,
                                              max_ms=max(self.ptt.jitter_start_ms, self.ptt.jitter_max_ms)),
                                 Decoder(self.params))
                self._talkers[unit] = talker
            talker.buffer.push(frame, now)
        if not self._wake.is_set():  # set() takes a lock and notifies: once is enough
            self._wake.set()
        if self.hooks.trace is not _noop:
            self.hooks.trace("rx", unit=unit, spurt=frame.spurt, seq=frame.seq, t=time.time())

    def _authorised(self, unit: str, frame: Frame) -> bool:
        state = self._state
        if self._arbiter_online:
            if state is not None and state.holder:
                return state.holder == unit and state.spurt == frame.spurt
            # The floor is free: only the END frame of a spurt just released may trail.
            talker = self._talkers.get(unit)
            return frame.end and talker is not None and talker.buffer.spurt == frame.spurt
        # No arbiter (listen-before-talk): one talker at a time, whoever came first.
        return self._current is None or self._current == unit

    # --- playout ------------------------------------------------------------------
    def _queue_tone(self, pcm: bytes) -> None:
        if not self.play_tones:
            return
        step = self.params.frame_bytes
        with self._rx_lock:
            for i in range(0, len(pcm), step):
                chunk = pcm[i:i + step]
                self._tones.append(chunk + bytes(step - len(chunk)))
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
        pcm = self._next_output(_now_ms())
        try:
            self.sink.write(pcm)
        except OSError as exc:  # the speaker failed (the unit's AudioDeviceError)
            log.error("ptt: %s", exc)

    def _idle(self) -> bool:
        """Nothing to play, nothing buffered, not transmitting."""
        with self._rx_lock:
            return (self._tx is Tx.IDLE and not self._tones and self._current is None
                    and not any(t.buffer.active for t in self._talkers.values()))

    def _watch_link(self) -> None:
        connected = self.link.connected.is_set()
        if connected == self._connected:
            return
        self._connected = connected
        self.hooks.online(connected)
        if not connected:
            with self._lock:
                if self._tx is Tx.TALKING:
                    self._end_tx_locked("link")
                elif self._tx is not Tx.IDLE:
                    self._tx = Tx.IDLE

    def _next_output(self, now_ms: float) -> bytes:
        silence = bytes(self.params.frame_bytes)
        with self._rx_lock:
            tone = self._tones.popleft() if self._tones else None
            pcm = self._pull(now_ms) if tone is None else None
            busy = self._current is not None or bool(self._tones)
        if busy:
            if not self.speech_gate.is_set():
                self.speech_gate.set()
        elif self.speech_gate.is_set():
            self.speech_gate.clear()
        if tone is not None:
            return tone
        if pcm is None:
            return silence
        if self.ptt.half_duplex and self._tx is Tx.TALKING:
            return silence  # our own speaker stays quiet while we talk
        return pcm

    def _pull(self, now_ms: float) -> bytes | None:
        """The next frame of the talker being played (called with _rx_lock held)."""
        state = self._state
        holder = state.holder if (state and self._arbiter_online is not False) else None
        if holder and self._current not in (None, holder):
            self._drop_talker(self._current)  # cut by a higher priority: stop playing it
        if self._current is None:
            candidates = [holder] if holder else list(self._talkers)
            for unit in candidates:
                talker = self._talkers.get(unit) if unit else None
                if talker is not None and talker.buffer.active:
                    self._current = unit
                    break
        if self._current is None:
            return None
        unit = self._current
        talker = self._talkers[unit]
        out = talker.buffer.pull(now_ms)
        if out is None:
            return None
        spurt = out.spurt
        if out.action is Action.END:
            self._current = None
            talker.playing = False
            self.hooks.rx(False)
            self.hooks.rx_end(unit, spurt)
            self.hooks.trace("rx_end", unit=unit, spurt=spurt, t=time.time())
            if self.play_tones:
                step = self.params.frame_bytes
                pcm = tones.roger()
                for i in range(0, len(pcm), step):
                    chunk = pcm[i:i + step]
                    self._tones.append(chunk + bytes(step - len(chunk)))
            return None
        if not talker.playing:
            talker.playing = True
            self.counters.spurts_heard += 1
            self.hooks.rx(True)
        try:
            if out.action is Action.PLAY:
                pcm = talker.decoder.decode(out.payload)
            elif out.action is Action.FEC:
                pcm = talker.decoder.decode_fec(out.payload)
            else:
                pcm = talker.decoder.conceal()
        except CodecError:
            self.counters.decode_errors += 1
            pcm = bytes(self.params.frame_bytes)
        self.hooks.rx_audio(unit, spurt, pcm)
        if self.hooks.trace is not _noop:
            self.hooks.trace("play", unit=unit, spurt=spurt, seq=out.seq, action=out.action.value,
                             t=time.time())
        return pcm

    def _drop_talker(self, unit: str | None) -> None:
        if unit is None:
            return
        talker = self._talkers.pop(unit, None)
        self._current = None
        if talker is not None and talker.playing:
            self.hooks.rx(False)
            self.hooks.rx_end(unit, talker.buffer.spurt or 0)


def _now_ms() -> float:
    return time.monotonic() * 1000.0
