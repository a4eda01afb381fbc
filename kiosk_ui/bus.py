"""The kiosk's MQTT side: publish assistant commands and alerts, relay events to the screens.

One `MqttLink` per kiosk process. Messages from `assistant/event` and `alert/{unit}/ack`
are validated with `posko.messages` and handed to every open screen through `Fanout`
(each server-sent-events stream holds one queue).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
import uuid
from typing import Any

from posko import topics
from posko.messages import Alert, AlertAck, AssistantCommand, AssistantEvent, BadMessage
from posko.mqtt import MqttLink
from posko.settings.core import MqttSettings

log = logging.getLogger(__name__)


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
        self.fanout.publish("ack", {"alert_id": ack.alert_id, "officer": ack.officer, "time": ack.time})

    def listen(self, lang: str, session: str = "") -> str:
        """Ask the unit's voice assistant to listen; returns the session id."""
        session = session or uuid.uuid4().hex
        cmd = AssistantCommand(command="listen", session=session, lang=lang)
        self.link.publish(topics.assistant_command(self.unit, self.root), cmd.to_json(), qos=0)
        return session

    def stop_listening(self, session: str, lang: str) -> None:
        cmd = AssistantCommand(command="stop", session=session, lang=lang)
        self.link.publish(topics.assistant_command(self.unit, self.root), cmd.to_json(), qos=0)

    def alert(self, source: str = "kiosk_darurat", text: str = "") -> tuple[Alert, bool]:
        """Publish an alert (QoS 1: queued and sent on reconnect if the link is down).

        `source` is "kiosk_darurat" (the Darurat screen) or "assistant" (a typed question
        the brain escalated; `text` is the question). Returns the alert and whether the
        broker link was up when it was sent.
        """
        alert = Alert(id=str(uuid.uuid4()), unit=self.unit, posko=self.posko_name,
                      source=source, text=text[:2000])
        was_connected = self.connected
        self.link.publish(topics.alert(self.unit, self.root), alert.to_json(), qos=1)
        return alert, was_connected
