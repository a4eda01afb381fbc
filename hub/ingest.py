"""The hub's one MQTT client: unit heartbeats and alerts into the database, and the
retained `kb/current` announcement of the knowledge-base bundle (see hub/kb.py).

`posko hub serve` runs this as its own child process, so exactly one process subscribes
however many gunicorn workers there are. Each message becomes a row update plus an
`events` row that every worker's live streams pick up.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import threading
import uuid

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from hub import kb
from hub.db import Sessions, database_url, make_engine
from hub.models import Alert, Event, Throttle, Unit, utcnow
from hub.texts import label
from hub.timefmt import local
from posko import topics
from posko.messages import Alert as AlertMessage
from posko.messages import BadMessage, Heartbeat
from posko.mqtt import MqttLink

log = logging.getLogger(__name__)

EVENTS_KEEP = dt.timedelta(days=2)
KB_CHECK_S = 10.0  # how often a newly stored kb/current is looked for
PRUNE_EVERY = 6  # prune old events every this many checks (one minute)


def _clean(text: str) -> str:
    """Text from the wire without NUL characters (PostgreSQL text cannot hold them)."""
    return text.replace("\x00", "").replace("\\u0000", "")


class Ingest:
    """Subscribes to unit status and alerts and writes them to the database."""

    def __init__(self, settings, url: str | None = None) -> None:
        self.settings = settings
        self.root = settings.mqtt.topic_root
        self.db = Sessions(make_engine(url or database_url(settings)))
        self.link = MqttLink(settings.mqtt, client_id=f"posko-hub-ingest-{uuid.uuid4().hex[:8]}",
                             on_connect=self.announce_kb)
        self.bad_messages = 0
        self._kb_announced: bytes | None = None

    def start(self) -> Ingest:
        kb.ensure_current(self.settings)  # the first start publishes the configured KB
        self.link.subscribe(topics.all_unit_status(self.root), self.on_status, qos=1)
        self.link.subscribe(topics.all_alerts(self.root), self.on_alert, qos=1)
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()
        self.db.engine.dispose()

    def announce_kb(self) -> None:
        """Publish the stored current bundle, retained (on every connect: a broker that lost
        its retained messages hears it again)."""
        current = kb.read_current(self.settings)
        if current is None:
            return
        kb.announce(self.link, self.settings, current)
        self._kb_announced = current.to_json()

    def check_kb(self) -> None:
        """Announce a bundle `posko hub kb-publish` stored while it could not reach the broker."""
        current = kb.read_current(self.settings)
        if current is not None and current.to_json() != self._kb_announced and self.link.connected.is_set():
            log.info("announcing knowledge base %s", current.version)
            self.announce_kb()

    def _unit_from_topic(self, topic: str, index: int) -> str | None:
        try:
            parts = topics.split(topic, self.root)
            return topics.check_id("unit", parts[index])
        except (ValueError, IndexError):
            return None

    def on_status(self, topic: str, payload: bytes) -> None:
        unit_id = self._unit_from_topic(topic, 1)
        if unit_id is None:
            return
        if payload.strip() in (b"offline", b'"offline"'):
            beat = None
        else:
            try:
                beat = Heartbeat.from_json(payload)
            except BadMessage as exc:
                self.bad_messages += 1
                log.warning("bad heartbeat on %s: %s", topic, exc)
                return
        with self.db.writer() as db:
            unit = db.get(Unit, unit_id)
            if unit is None:  # heard before anyone added it: shown, but it has no token
                unit = Unit(id=unit_id, name=unit_id, created_at=utcnow(), status="unknown",
                            version="", uptime_s=0.0, disk_free_mb=0.0, outbox_pending=0,
                            outbox_oldest_s=0.0, models={}, talk_group="", interval_s=30.0)
                db.add(unit)
            before = unit.status
            if beat is None or beat.state != "online":
                unit.status = "offline"
            else:
                unit.status = "online"
                unit.last_seen_at = utcnow()
                unit.version = _clean(beat.version)[:64]
                unit.uptime_s = beat.uptime_s
                unit.disk_free_mb = beat.disk_free_mb
                unit.outbox_pending = beat.outbox_pending
                unit.outbox_oldest_s = beat.outbox_oldest_s
                unit.models = json.loads(_clean(json.dumps(beat.models)))
                unit.talk_group = _clean(beat.talk_group)[:64]
                unit.interval_s = max(1.0, beat.interval_s)
                kb_part = beat.parts.get("kb") if isinstance(beat.parts, dict) else None
                if isinstance(kb_part, dict):  # a unit without a KB updater sends none
                    unit.kb_version = _clean(str(kb_part.get("installed") or ""))[:16]
            db.add(Event(kind="unit", at=utcnow(),
                         data={"unit": unit_id, "status": unit.status, "was": before}))
            db.commit()

    def on_alert(self, topic: str, payload: bytes) -> None:
        unit_id = self._unit_from_topic(topic, 1)
        if unit_id is None:
            return
        try:
            msg = AlertMessage.from_json(payload)
        except BadMessage as exc:
            self.bad_messages += 1
            log.warning("bad alert on %s: %s", topic, exc)
            return
        alert_id = _clean(msg.id)[:64]
        try:
            sent = dt.datetime.fromtimestamp(msg.time, dt.UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            sent = utcnow()
        with self.db.writer() as db:
            if db.get(Alert, alert_id) is not None:
                return  # a repeat (QoS 1 redelivery): already on every dashboard
            now = utcnow()
            posko, text = _clean(msg.posko)[:200], _clean(msg.text)
            db.add(Alert(id=alert_id, unit_id=unit_id, posko=posko, source=msg.source,
                         text=text, sent_at=sent, received_at=now, acked_by=""))
            db.add(Event(kind="alert", at=now, data={
                "id": alert_id, "unit": unit_id, "posko": posko, "source": msg.source,
                "source_label": label("alert_sources", msg.source), "text": text[:500],
                "received_at": now.isoformat() + "Z",
                "received_local": local(now, self.settings.hub.display_tz, "%H:%M:%S")}))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()

    def prune(self) -> None:
        """Forget old live events and throttle rows."""
        with self.db.writer() as db:
            cutoff = utcnow() - EVENTS_KEEP
            newest = db.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
            # Keep the newest row so event ids never restart from 1 on SQLite.
            db.execute(delete(Event).where(Event.at < cutoff, Event.id != (newest or 0)))
            db.execute(delete(Throttle).where(Throttle.at < cutoff))
            db.commit()


def run(settings) -> None:
    """Run until SIGTERM/SIGINT."""
    logging.basicConfig(level=settings.posko.log_level,
                        format="%(asctime)s hub-ingest %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ingest = Ingest(settings).start()
    log.info("ingest subscribed to %s and %s on %s:%s", topics.all_unit_status(ingest.root),
             topics.all_alerts(ingest.root), settings.mqtt.host, settings.mqtt.port)
    ticks = 0
    try:
        while not stop.wait(KB_CHECK_S):
            ticks += 1
            try:
                ingest.check_kb()
            except Exception:
                log.exception("announcing the knowledge base failed")
            if ticks % PRUNE_EVERY:
                continue
            try:
                ingest.prune()
            except Exception:
                log.exception("prune failed")
    finally:
        ingest.stop()
