"""The floor arbiter: one MQTT service deciding who talks in every talk group.

It listens to floor requests (`tg/+/floor/request/+`), audio (`tg/+/audio/+`, to see
whether the holder is still talking and to feed the recorder) and unit status last-wills
(`unit/+/status`), asks the pure `FloorPolicy` of the group, and publishes the answer as
the retained `tg/{group}/floor/state`. A requester therefore gets its grant or deny one
broker round trip after it asked. Its own presence is the retained `arbiter/status`,
"offline" by last-will, so units know when to fall back to listen-before-talk.

A unit's priority is capped by configuration (`ptt.command_units`, `ptt.supervisor_units`):
the MQTT user name is the unit id and the broker's ACL stops a unit from publishing a
request under another id, so a unit cannot claim the command center's priority. Emergency
is the exception, as in MCPTT: every unit has an emergency button, so any unit may claim
it (`ptt.emergency_allowed`, on by default; off, an emergency claim is capped like the
others). An emergency grant is logged as a warning.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from pathlib import Path

from gateway.errors import BadFloorMessage, BadFrame
from gateway.floor import Decision, Event, FloorPolicy, Priority
from gateway.messages import FloorRequest, FloorState
from gateway.packet import Frame
from gateway.ratelimit import due as _due
from gateway.recorder import Recorder
from gateway.recordings import apply_retention
from posko import topics
from posko.mqtt import MqttLink, Will
from posko.settings.core import MqttSettings
from posko.settings.ptt import PttSettings

log = logging.getLogger(__name__)


class Arbiter:
    """Floor control for every group seen on the broker, plus the recorder."""

    def __init__(self, mqtt: MqttSettings, ptt: PttSettings, recordings: Path | None = None,
                 *, tick_s: float = 0.05, client_id: str | None = None) -> None:
        self.ptt = ptt
        self.root = mqtt.topic_root
        self.client_id = client_id or f"arbiter-{uuid.uuid4().hex[:8]}"
        self.tick_s = tick_s
        self._lock = threading.RLock()
        self._groups: dict[str, FloorPolicy] = {}
        self._since: dict[str, float] = {}  # group -> Unix time of the current grant
        self.counters = {"requests": 0, "grants": 0, "denials": 0, "preemptions": 0,
                         "releases": 0, "silence_releases": 0, "timeouts": 0,
                         "offline_releases": 0, "bad_requests": 0, "bad_frames": 0,
                         "unauthorised_frames": 0}
        self.unauthorised: dict[str, int] = {}  # unit -> frames sent without the floor
        self._warned: dict[str, float] = {}  # unit -> when it was last logged
        self._ended: deque[tuple[str, int]] = deque(maxlen=64)  # spurts that lost the floor
        self.recordings = recordings
        self.recorder = (Recorder(recordings, idle_ms=ptt.silence_release_ms, background=True)
                         if recordings is not None else None)
        will = Will(topics.arbiter_status(self.root), self._presence("offline"), qos=1, retain=True)
        self.link = MqttLink(mqtt, self.client_id, will=will, on_connect=self._on_connect)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_retention = float("-inf")  # first pass at start

    # --- life cycle ---------------------------------------------------------------
    def start(self) -> Arbiter:
        r = self.root
        self.link.subscribe(topics.all_floor_requests(r), self._on_request, qos=1)
        self.link.subscribe(topics.all_audio(r), self._on_audio, qos=0)
        self.link.subscribe(topics.all_unit_status(r), self._on_unit_status, qos=1)
        self.link.subscribe(f"{r}/tg/+/floor/state", self._on_state, qos=1)
        self.link.start()
        self._thread = threading.Thread(target=self._run, name="arbiter-tick", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop: save open recordings, mark the arbiter offline, disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self.recorder is not None:
            with self._lock:
                self.recorder.flush()
        if self.link.connected.is_set():
            self.link.publish(topics.arbiter_status(self.root), self._presence("offline"),
                              qos=1, retain=True).wait_for_publish(2)
        self.link.stop()

    def _presence(self, state: str) -> bytes:
        return json.dumps({"state": state, "arbiter": getattr(self, "client_id", ""),
                           "time": time.time()}).encode()

    def _on_connect(self) -> None:
        self.link.publish(topics.arbiter_status(self.root), self._presence("online"), qos=1,
                          retain=True)
        # After a broker restart the retained states may be gone or stale: say again
        # what this arbiter knows.
        with self._lock:
            for group in list(self._groups):
                self._publish(group, None)

    def status(self) -> dict:
        with self._lock:
            return {"arbiter": self.client_id, "connected": self.link.connected.is_set(),
                    "groups": {g: (p.holder.unit if p.holder else "") for g, p in self._groups.items()},
                    "unauthorised": dict(self.unauthorised), **self.counters,
                    "recordings": self.recorder.saved_count if self.recorder is not None else 0,
                    "recording_errors": self.recorder.errors if self.recorder is not None else 0,
                    "recording_out_of_range": (self.recorder.out_of_range
                                               if self.recorder is not None else 0)}

    # --- handlers (paho network thread) -------------------------------------------
    def _policy(self, group: str) -> FloorPolicy:
        policy = self._groups.get(group)
        if policy is None:
            policy = FloorPolicy(silence_release_ms=self.ptt.silence_release_ms,
                                 max_hold_ms=(self.ptt.tx_timeout_s + 5) * 1000.0)
            self._groups[group] = policy
        return policy

    def _parse_topic(self, topic: str, kind: str) -> tuple[str, str] | None:
        try:
            levels = topics.split(topic, self.root)
            group, unit = levels[1], levels[-1]
            topics.check_id("group", group)
            topics.check_id("unit", unit)
        except (ValueError, IndexError):
            log.warning("arbiter: ignoring %s on an unexpected topic %r", kind, topic)
            return None
        return group, unit

    def allowed_priority(self, unit: str, wanted: Priority = Priority.EMERGENCY) -> Priority:
        """The priority `unit` gets when it asks for `wanted`."""
        if wanted is Priority.EMERGENCY and self.ptt.emergency_allowed:
            return Priority.EMERGENCY
        return min(wanted, self._cap(unit))

    def _cap(self, unit: str) -> Priority:
        if unit in self.ptt.command_units:
            return Priority.COMMAND
        if unit in self.ptt.supervisor_units:
            return Priority.SUPERVISOR
        return Priority.NORMAL

    def _on_request(self, topic: str, payload: bytes) -> None:
        parsed = self._parse_topic(topic, "floor request")
        if parsed is None:
            return
        group, unit = parsed
        try:
            req = FloorRequest.from_json(payload)
        except BadFloorMessage as exc:
            with self._lock:
                self.counters["bad_requests"] += 1
            log.warning("arbiter: bad floor request from %s in %s: %s", unit, group, exc)
            return
        now = time.monotonic() * 1000.0
        with self._lock:
            policy = self._policy(group)
            if req.action == "release":
                decision = policy.release(unit, req.spurt, now)
                if decision is None:
                    return
                self.counters["releases"] += 1
            else:
                self.counters["requests"] += 1
                wanted = Priority.parse(req.priority)
                priority = self.allowed_priority(unit, wanted)
                decision = policy.request(unit, priority, req.spurt, now)
                if priority is Priority.EMERGENCY and decision.event is not Event.DENY:
                    log.warning("floor %s: EMERGENCY from %s", group, unit)
                self._count(decision)
            self._publish(group, decision)

    def _on_audio(self, topic: str, payload: bytes) -> None:
        parsed = self._parse_topic(topic, "audio")
        if parsed is None:
            return
        group, unit = parsed
        try:
            frame = Frame.from_bytes(payload)
        except BadFrame:
            with self._lock:
                self.counters["bad_frames"] += 1
            return
        now = time.monotonic() * 1000.0
        with self._lock:
            policy = self._policy(group)
            if not policy.audio(unit, frame.spurt, now):
                # Frames of a spurt that just lost the floor (released, cut) trail in: not a fault.
                if (unit, frame.spurt) in self._ended:
                    return
                self.counters["unauthorised_frames"] += 1
                self.unauthorised[unit] = self.unauthorised.get(unit, 0) + 1
                if _due(self._warned, unit):
                    log.warning("arbiter: %s sends audio in %s without the floor (spurt %08x; "
                                "%d frames so far)", unit, group, frame.spurt, self.unauthorised[unit])
                return
            if self.recorder is not None:
                self.recorder.add(group, unit, frame)

    def _on_unit_status(self, topic: str, payload: bytes) -> None:
        try:
            unit = topics.split(topic, self.root)[1]
            data = json.loads(payload)
        except (ValueError, IndexError):
            return
        if not isinstance(data, dict) or data.get("state") != "offline":
            return
        now = time.monotonic() * 1000.0
        with self._lock:
            for group, policy in self._groups.items():
                decision = policy.offline(unit, now)
                if decision is not None:
                    self.counters["offline_releases"] += 1
                    self._publish(group, decision)

    def _on_state(self, topic: str, payload: bytes) -> None:
        """A retained state left by an earlier arbiter is corrected to what this one knows."""
        try:
            state = FloorState.from_json(payload)
            group = topics.split(topic, self.root)[1]
            topics.check_id("group", group)
        except (ValueError, IndexError):
            return
        if state.arbiter == self.client_id:
            return
        with self._lock:
            policy = self._policy(group)
            if state.holder and policy.adopt(state.holder, Priority.parse(state.priority),
                                             state.spurt, time.monotonic() * 1000.0):
                # An earlier arbiter (before a restart) granted this floor: keep the talker
                # talking; the silence rule frees it if it has stopped meanwhile.
                self._since[group] = state.since or time.time()
                log.info("arbiter: took over the floor of %s held by %s", group, state.holder)
                self._publish(group, None)
                return
            holder = policy.holder.unit if policy.holder else ""
            if state.holder != holder:
                log.info("arbiter: correcting the stale floor state of %s", group)
                self._publish(group, None)

    # --- decisions ----------------------------------------------------------------
    def _count(self, decision: Decision) -> None:
        key = {Event.GRANT: "grants", Event.DENY: "denials", Event.PREEMPT: "preemptions"}
        if decision.event in key:
            self.counters[key[decision.event]] += 1
        if decision.event is Event.PREEMPT:
            self.counters["grants"] += 1

    def _publish(self, group: str, decision: Decision | None) -> None:
        policy = self._groups[group]
        holder = policy.holder
        if decision is not None and decision.event is not Event.DENY:
            ended = decision.cut or (decision.holder is None and decision) or None
            if ended is not None:
                self._ended.append((ended.unit, ended.spurt))
        if decision is not None and decision.event in (Event.GRANT, Event.PREEMPT):
            self._since[group] = time.time()
        state = FloorState(
            group=group, holder=holder.unit if holder else "",
            priority=holder.priority.name.lower() if holder else "normal",
            spurt=holder.spurt if holder else 0,
            since=self._since.get(group, 0.0) if holder else 0.0,
            event=decision.event.value if decision else Event.IDLE.value,
            event_unit=decision.unit if decision else "",
            event_spurt=decision.spurt if decision else 0,
            arbiter=self.client_id)
        self.link.publish(topics.tg_floor_state(group, self.root), state.to_json(), qos=1,
                          retain=True)
        if decision is not None and decision.event not in (Event.GRANT, Event.DENY):
            log.info("floor %s: %s %s", group, decision.event.value, decision.unit)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            now = time.monotonic() * 1000.0
            with self._lock:
                for group, policy in self._groups.items():
                    decision = policy.tick(now)
                    if decision is not None:
                        self.counters["silence_releases" if decision.event is Event.SILENCE
                                      else "timeouts"] += 1
                        self._publish(group, decision)
                if self.recorder is not None:
                    self.recorder.tick()
            self._retention()

    def _retention(self) -> None:
        if self.recordings is None or time.monotonic() - self._last_retention < 3600:
            return
        self._last_retention = time.monotonic()
        try:
            removed = apply_retention(self.recordings, self.ptt.retention_days)
        except OSError as exc:
            log.error("recorder: retention failed: %s", exc)
            return
        if removed:
            log.info("recorder: deleted %d recordings older than %d days", removed,
                     self.ptt.retention_days)

