"""The unit daemon (`posko unit`): one MQTT link, the panel, and the unit's components.

Components are the parts that run on a unit: the voice assistant (Tanya Pak Polisi) with
its knowledge-base updater (`firmware.kb_update`), and push-to-talk (`firmware.ptt_unit`). Each implements `UnitComponent`
and gets a `UnitContext` at start; its `status()` goes into the heartbeat under
`parts[name]`. The agent publishes a retained heartbeat every `[unit] heartbeat_s` (the
broker publishes `Heartbeat.offline` as last-will when the unit vanishes), raises an Alert
when the panic button is held, and tells systemd it is ready and alive when run under it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import sdnotify

from firmware.broker_login import BrokerLoginKeeper
from firmware.panel import NoPanel, Panel, StatusLed, build_panel
from firmware.procinfo import disk_free_mb, rss_mb
from firmware.ptt_unit import make_component
from firmware.unanswered_upload import UnansweredUploader
from firmware.updater import Updater, busy_reasons
from posko import __version__, topics
from posko.config import Settings
from posko.kiosk_status import outbox_figures
from posko.messages import Alert, Heartbeat
from posko.mqtt import MqttLink, Will

log = logging.getLogger(__name__)


@dataclass
class UnitContext:
    """What every component of a unit shares."""

    settings: Settings
    link: MqttLink
    panel: Panel | NoPanel
    state_dir: Path
    # Set by push-to-talk while received radio speech plays; the assistant's speech
    # pauses while it is set (received speech has priority over the kiosk's TTS).
    speech_gate: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.time)
    # Components call this when their state changes, so the heartbeat goes out at once.
    request_heartbeat: Callable[[], None] = field(default=lambda: None)
    # The KB updater calls this after installing a new bundle: components reload it.
    kb_installed: Callable[[], None] = field(default=lambda: None)

    @property
    def status_led(self) -> StatusLed:
        return self.panel.status

    @property
    def unit(self) -> str:
        return self.settings.posko.unit_id

    @property
    def root(self) -> str:
        return self.settings.mqtt.topic_root

    def raise_alert(self, source: str, text: str = "") -> Alert:
        """Publish an Alert (QoS 1: it is queued while the broker is away)."""
        alert = Alert(id=str(uuid.uuid4()), unit=self.unit, posko=self.settings.posko.posko_name,
                      source=source, text=text)
        self.link.publish(topics.alert(self.unit, self.root), alert.to_json(), qos=1)
        log.warning("ALERT %s from %s: %s", alert.id, source, text or "(no text)")
        return alert


@runtime_checkable
class UnitComponent(Protocol):
    """A part of the unit the agent starts, stops and reports on."""

    name: str

    def start(self, ctx: UnitContext) -> None:
        """Begin working; must return quickly (long loading goes to a thread)."""

    def stop(self) -> None:
        """Stop and release devices; called once at shutdown."""

    def status(self) -> dict[str, Any]:
        """JSON-ready status for the heartbeat's `parts[name]`."""


class Agent:
    """Runs until `stop()`: link, panel, components, heartbeat, systemd notifications."""

    def __init__(self, settings: Settings, components: list[UnitComponent] | None = None,
                 panel: Panel | NoPanel | None = None) -> None:
        self.settings = settings
        self.unit = topics.check_id("unit", settings.posko.unit_id)
        root = settings.mqtt.topic_root
        self.link = MqttLink(settings.mqtt, client_id=f"unit-{self.unit}",
                             will=Will(topics.unit_status(self.unit, root),
                                       Heartbeat.offline(self.unit), qos=1, retain=True),
                             on_connect=self._on_connect)
        self.components = list(components) if components is not None else self._default_components()
        self.panel = panel if panel is not None else build_panel(
            settings.unit, on_tanya=self._on_tanya, on_panic=self._on_panic)
        self.ctx = UnitContext(settings, self.link, self.panel, settings.state_dir)
        self.ctx.request_heartbeat = self.request_heartbeat
        self.ctx.kb_installed = self.reload
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._started_mono = time.monotonic()
        self._notifier = None
        self._failed: dict[str, str] = {}  # components whose start() raised
        self._refused_seen: dict[str, str] = {}

    def _default_components(self) -> list[UnitComponent]:
        out: list[UnitComponent] = []
        if self.settings.unit.assistant_enabled:
            # lazy: the voice and the assistant need the kiosk extra, which a PTT-only unit lacks
            from firmware.kb_update import KbUpdater
            from firmware.voice_component import VoiceComponent

            out.append(VoiceComponent())
            out.append(KbUpdater())  # the hub's knowledge-base bundles
            out.append(UnansweredUploader())  # unanswered questions to the hub's KB editors
        ptt = make_component(self.settings)
        if ptt is not None:
            out.append(ptt)
        out.append(Updater(busy=self.busy_reasons))  # Posko releases from the hub (off in a checkout)
        out.append(BrokerLoginKeeper())  # the bridge's login at the central broker, renewed after a rotation
        return out

    def busy_reasons(self) -> list[str]:
        """Why an update must wait now: a transmission, a resident being served."""
        ptt, voice = self.component("ptt"), self.component("voice")
        # The kiosk app's local status: its `busy` flag, when it reports one (a PTT unit: None).
        kiosk = outbox_figures(self.settings) if self.settings.unit.assistant_enabled else None
        return busy_reasons(ptt.status() if ptt is not None else None, bool(getattr(voice, "busy", False)),
                            kiosk)

    def component(self, name: str) -> UnitComponent | None:
        return next((c for c in self.components if c.name == name), None)

    # panel callbacks (gpiozero's thread)
    def _on_tanya(self) -> None:
        voice = self.component("voice")
        if voice is not None and hasattr(voice, "toggle"):
            voice.toggle(source="button")

    def _on_panic(self) -> None:
        self.ctx.raise_alert("panic_button")

    def _on_connect(self) -> None:
        self._wake.set()  # publish a fresh heartbeat at once (the retained one may be "offline")

    def heartbeat(self) -> Heartbeat:
        s = self.settings
        refused = self._watch_refusals()
        parts: dict[str, Any] = {}
        models: dict[str, Any] = {}
        for c in self.components:
            if c.name in self._failed:
                parts[c.name] = {"error": self._failed[c.name]}
                continue
            try:
                st = c.status()
            except Exception as exc:
                st = {"error": str(exc)}
            parts[c.name] = st
            models.update(st.pop("models", {}) if isinstance(st, dict) else {})
        outbox = outbox_figures(s) or {}  # from the kiosk app's local API; none on a PTT unit
        if outbox:
            parts["outbox"] = outbox
        parts["agent"] = {"rss_mb": round(rss_mb()), "status_led": "blinking" if self.panel.status.blinking else "steady",
                          "problems": sorted(self.panel.status.problems),
                          # Subscriptions the broker refused (pattern -> reason): messages on
                          # them never arrive; the hub and `posko doctor` show it.
                          "mqtt_refused": refused}
        return Heartbeat(
            unit=self.unit, state="online", version=__version__,
            uptime_s=round(time.monotonic() - self._started_mono, 1),
            disk_free_mb=round(disk_free_mb(s.state_dir), 1),
            outbox_pending=int(outbox.get("pending", 0) or 0),
            outbox_oldest_s=float(outbox.get("oldest_pending_s", 0.0) or 0.0),
            # The group push-to-talk is in now (its next-group button changes it), else the configured one.
            models=models, talk_group=str(parts.get("ptt", {}).get("group") or s.ptt.group),
            interval_s=float(s.unit.heartbeat_s),
            parts=parts)

    def publish_heartbeat(self) -> None:
        self.link.publish(topics.unit_status(self.unit, self.settings.mqtt.topic_root),
                          self.heartbeat().to_json(), qos=1, retain=True)

    def request_heartbeat(self) -> None:
        """Publish a heartbeat soon (components call it when their state changes)."""
        self._wake.set()

    def start(self) -> Agent:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.link.start()
        for c in self.components:
            log.info("starting %s", c.name)
            try:
                c.start(self.ctx)
            except Exception as exc:  # one broken part must not take the others down
                log.error("%s did not start: %s", c.name, exc, exc_info=True)
                self._failed[c.name] = f"did not start: {exc}"
                self.panel.status.problem(c.name)
        self._notify("READY=1")
        return self

    def run(self) -> None:
        """Heartbeat loop until stop(); SIGTERM handling is the caller's."""
        self.start()
        try:
            self.loop()
        finally:
            self.shutdown()

    def _watch_refusals(self) -> dict[str, str]:
        """A refused subscription blinks the status LED and goes out in a heartbeat at once.
        Returns the refusals now (pattern -> reason)."""
        refused = dict(self.link.refused)
        if refused == self._refused_seen:
            return refused
        self._refused_seen = refused
        if refused:
            self.panel.status.problem("mqtt_acl")
        else:
            self.panel.status.resolved("mqtt_acl")
        self._wake.set()
        return refused

    def loop(self) -> None:
        interval = self.settings.unit.heartbeat_s
        next_beat = 0.0
        while not self._stop.is_set():
            self._watch_refusals()
            now = time.monotonic()
            if now >= next_beat or self._wake.is_set():
                self._wake.clear()
                if self.link.connected.is_set():
                    self.publish_heartbeat()
                    next_beat = now + interval
                else:
                    next_beat = now + 0.5
            self._notify("WATCHDOG=1")
            self._wake.wait(min(1.0, max(0.05, next_beat - time.monotonic())))

    def reload(self) -> None:
        """SIGHUP or a newly installed KB bundle: components that can reload (the voice's
        knowledge base) do so."""
        for c in self.components:
            if hasattr(c, "reload"):
                threading.Thread(target=c.reload, name=f"reload-{c.name}", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def shutdown(self) -> None:
        self._notify("STOPPING=1")
        for c in reversed(self.components):
            if c.name in self._failed:
                continue
            try:
                c.stop()
            except Exception:
                log.exception("stopping %s failed", c.name)
        try:
            # A clean stop is not a crash: say so (the last-will is only for crashes).
            self.link.publish(topics.unit_status(self.unit, self.settings.mqtt.topic_root),
                              Heartbeat.offline(self.unit), qos=1, retain=True).wait_for_publish(2)
        except (RuntimeError, ValueError):
            pass
        self.link.stop()
        self.panel.close()

    def _notify(self, state: str) -> None:
        if not os.environ.get("NOTIFY_SOCKET"):
            return
        if self._notifier is None:
            self._notifier = sdnotify.SystemdNotifier()
        self._notifier.notify(state)
