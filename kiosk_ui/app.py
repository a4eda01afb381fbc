"""`create_app()`: the kiosk's Flask app and the parts it runs beside (sync, MQTT, brain).

`create_app(settings)` (a `posko.config.Settings`) is what `posko kiosk-ui` serves: it
starts the sync worker, the MQTT link and the brain loader. `create_app({...})` is the test
form: a dict with `SETTINGS` and switches `START_SYNC`, `START_MQTT`, `START_BRAIN`,
`START_ALERTS` (the alert sender's retry thread; default off, except the brain) and
optional `TOKEN_PROVIDER` and `BRAIN` objects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from kiosk_ui import clock, views
from kiosk_ui.alertbox import AlertBox, AlertSender, describe
from kiosk_ui.assistant import BrainHandle
from kiosk_ui.bus import Fanout, KioskBus
from kiosk_ui.outbox import Outbox, outbox_dir
from kiosk_ui.presence import Presence, ttl_for
from kiosk_ui.sync import LinkState, SyncWorker
from posko.config import Settings, load_settings
from posko.enroll import read_token
from posko.hubclient import HubClient

log = logging.getLogger(__name__)


@dataclass
class Kiosk:
    """Everything the views need, kept on `app.extensions["kiosk"]`."""

    settings: Settings
    outbox: Outbox
    client: HubClient
    link: LinkState
    fanout: Fanout
    brain: BrainHandle
    alerts: AlertBox
    sender: AlertSender
    presence: Presence  # which screen the resident is on (the unit's updater waits)
    worker: SyncWorker | None = None
    bus: KioskBus | None = None

    def stop(self) -> None:
        self.sender.stop()
        if self.worker:
            self.worker.stop()
        if self.bus:
            self.bus.stop()

    def alert_seen_on_broker(self, alert) -> None:
        """An alert of this unit on the local broker: keep it, and count it sent when a
        bridge to the central broker is up. A panic-button alert opens its screen."""
        try:
            new = self.alerts.add(alert)
        except Exception:
            log.exception("kiosk: an alert from the broker could not be stored")
            return
        if self.bus is not None and self.bus.bridge_up:
            self.alerts.mark_bridge(alert.id)
        if new:
            self.sender.wake()
            rec = self.alerts.get(alert.id)
            if rec is not None:
                self.fanout.publish("alert_new", describe(rec))


def default_token_provider(settings: Settings) -> Callable[[], str | None]:
    """The unit's hub token from `posko.enroll.read_token`, or None when not enrolled."""

    def provide() -> str | None:
        try:
            return read_token(settings) or None
        except Exception:  # an unreadable token file: behave as not enrolled, say so in logs
            log.exception("kiosk: cannot read the hub token")
            return None

    return provide


def create_app(settings_or_test_config: Settings | dict[str, Any] | None = None) -> Flask:
    if isinstance(settings_or_test_config, Settings):
        settings = settings_or_test_config
        config: dict[str, Any] = {"START_SYNC": settings.kiosk.sync_enabled, "START_MQTT": True,
                                  "START_BRAIN": True, "START_ALERTS": True}
    else:
        config = dict(settings_or_test_config or {})
        settings = config.pop("SETTINGS", None) or load_settings()
        config.setdefault("START_SYNC", False)
        config.setdefault("START_MQTT", False)
        config.setdefault("START_BRAIN", True)
        config.setdefault("START_ALERTS", False)

    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.kiosk.photo_max_bytes + 64 * 1024,
        JSON_AS_ASCII=False,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    app.config.update({k: v for k, v in config.items() if k.isupper()})
    app.json.ensure_ascii = False

    k = settings.kiosk
    outbox = Outbox.open(outbox_dir(settings))
    token_provider = config.get("TOKEN_PROVIDER") or default_token_provider(settings)
    client = HubClient(k.hub_url, token_provider, timeout_s=k.http_timeout_s, ca_file=k.hub_ca_file)
    link = LinkState()
    fanout = Fanout()
    brain = BrainHandle(settings.assistant.kb_dir, brain=config.get("BRAIN"), settings=settings)
    if config.get("START_BRAIN"):
        brain.start()
    clock.zone(k.display_tz)  # an unknown zone is a clear error at start, not a blank clock
    alerts = AlertBox.open(outbox_dir(settings).parent / "alerts")
    alerts.on_change(lambda rec: fanout.publish("alert_state", describe(rec)))
    sender = AlertSender(alerts, client, interval_s=k.alert_retry_s,
                         timeout_s=min(3.0, k.http_timeout_s))
    kiosk = Kiosk(settings, outbox, client, link, fanout, brain, alerts, sender,
                  Presence(ttl_for(settings.kiosk.idle_reset_s, settings.kiosk.idle_warn_s)))
    if config.get("START_SYNC"):
        kiosk.worker = SyncWorker(
            outbox, client, interval_s=k.sync_interval_s, base_s=k.sync_backoff_base_s,
            cap_s=k.sync_backoff_cap_s, probe_s=k.sync_probe_s, retention_days=k.retention_days,
            reconcile_every_s=k.reconcile_every_s, link=link).start()
    if config.get("START_MQTT"):
        kiosk.bus = KioskBus(settings.mqtt, settings.posko.unit_id, settings.posko.posko_name,
                             fanout)
        kiosk.bus.on_alert = kiosk.alert_seen_on_broker
        kiosk.bus.on_ack = lambda ack: alerts.mark_acked(ack.alert_id, ack.officer, ack.time)
        sender.publish_mqtt = kiosk.bus.publish_alert
        kiosk.bus.start()
    if config.get("START_ALERTS"):
        sender.start()
    app.extensions["kiosk"] = kiosk
    app.register_blueprint(views.bp)
    return app
