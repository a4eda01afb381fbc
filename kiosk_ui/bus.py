"""The kiosk's MQTT side: publish assistant commands and alerts, relay events to the screens.

One `MqttLink` per kiosk process. Messages from `assistant/event` and `alert/{unit}/ack`
are validated with `posko.messages` and handed to every open screen through `Fanout`
(each server-sent-events stream holds one queue).

The bus also reads this unit's own `alert/{unit}` topic (the panic button's alerts from the
unit agent, and the kiosk's own coming back) and the local broker's bridge states
(`$SYS/broker/connection/+/state`): an alert seen on the local broker while a bridge is up
counts as sent (kiosk_ui.alertbox).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from posko import topics
from posko.messages import Alert, AlertAck, AssistantCommand, AssistantEvent, BadMessage
from posko.mqtt import MqttLink
from posko.settings.core import MqttSettings

log = logging.getLogger(__name__)

BRIDGE_STATE_TOPIC = "$SYS/broker/connection/+/state"


class Fanout:
    """Hands each published event to every subscriber queue (slow screens drop, never block).

    The last few events are replayed to a new subscriber, so a screen whose event stream
    (re)connects a moment after an answer or an ack was published still gets it; screens
    filter by their own session or alert id.
    """

    def __init__(self, maxsize: int = 200, replay: int = 20, replay_s: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._queues: list[queue.Queue] = []
        self._recent: collections.deque = collections.deque(maxlen=replay)
        self.replay_s = replay_s
        self.maxsize = maxsize

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(self.maxsize)
        cutoff = time.monotonic() - self.replay_s
        with self._lock:
            for stamp, kind, data in self._recent:
                if stamp >= cutoff:
                    q.put_nowait((kind, data))
            self._queues.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            if q in self._queues:
                self._queues.remove(q)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._recent.append((time.monotonic(), kind, data))
            targets = list(self._queues)
        for q in targets:
            try:
                q.put_nowait((kind, data))
            except queue.Full:
                pass

    def count(self) -> int:
        with self._lock:
            return len(self._queues)


class KioskBus:
    """The kiosk UI's MQTT link: what it publishes and what it relays to the screens."""

    def __init__(self, mqtt_settings: MqttSettings, unit: str, posko_name: str,
                 fanout: Fanout) -> None:
        self.unit = topics.check_id("unit", unit)
        self.posko_name = posko_name
        self.root = mqtt_settings.topic_root
        self.fanout = fanout
        self.link = MqttLink(mqtt_settings, client_id=f"{unit}-kiosk-ui-{uuid.uuid4().hex[:6]}")
        self.link.subscribe(topics.assistant_event(self.unit, self.root), self._on_event, qos=0)
        self.link.subscribe(topics.alert_ack(self.unit, self.root), self._on_ack, qos=1)
        self.link.subscribe(topics.alert(self.unit, self.root), self._on_alert, qos=1)
        self.link.subscribe(BRIDGE_STATE_TOPIC, self._on_bridge_state, qos=0)
        self.bridges: dict[str, bool] = {}
        # Set by the app: on_alert(alert) for every alert seen on this unit's topic,
        # on_ack(ack) for every acknowledgement.
        self.on_alert: Callable[[Alert], None] | None = None
        self.on_ack: Callable[[AlertAck], None] | None = None

    def start(self) -> KioskBus:
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()

    @property
    def connected(self) -> bool:
        return self.link.connected.is_set()

    def _on_event(self, topic: str, payload: bytes) -> None:
        try:
            event = AssistantEvent.from_json(payload)
        except BadMessage as exc:
            log.warning("dropped a bad assistant event: %s", exc)
            return
        self.fanout.publish("assistant", {"type": event.type, "session": event.session,
                                          "text": event.text, "reply": event.reply})

    def _on_ack(self, topic: str, payload: bytes) -> None:
        try:
            ack = AlertAck.from_json(payload)
        except BadMessage as exc:
            log.warning("dropped a bad alert ack: %s", exc)
            return
        if self.on_ack is not None:
            self.on_ack(ack)
        self.fanout.publish("ack", {"alert_id": ack.alert_id, "officer": ack.officer, "time": ack.time})

    def _on_alert(self, topic: str, payload: bytes) -> None:
        try:
            alert = Alert.from_json(payload)
        except BadMessage as exc:
            log.warning("dropped a bad alert on %s: %s", topic, exc)
            return
        if alert.unit != self.unit or self.on_alert is None:
            return
        self.on_alert(alert)

    def _on_bridge_state(self, topic: str, payload: bytes) -> None:
        name = topic.split("/")[3] if topic.count("/") >= 4 else topic
        self.bridges[name] = payload.strip() == b"1"

    @property
    def bridge_up(self) -> bool:
        """The local broker reports a bridge to the central broker connected (now)."""
        return self.connected and any(self.bridges.values())

    def publish_alert(self, alert: Alert) -> None:
        """Publish an alert (QoS 1) on this unit's topic; raises when there is no link now."""
        if not self.connected:
            raise ConnectionError("no MQTT link to the local broker")
        self.link.publish(topics.alert(self.unit, self.root), alert.to_json(), qos=1)

    def listen(self, lang: str, session: str = "") -> str:
        """Ask the unit's voice assistant to listen; returns the session id."""
        session = session or uuid.uuid4().hex
        cmd = AssistantCommand(command="listen", session=session, lang=lang)
        self.link.publish(topics.assistant_command(self.unit, self.root), cmd.to_json(), qos=0)
        return session

    def stop_listening(self, session: str, lang: str) -> None:
        cmd = AssistantCommand(command="stop", session=session, lang=lang)
        self.link.publish(topics.assistant_command(self.unit, self.root), cmd.to_json(), qos=0)
