"""The hub's one MQTT client: unit heartbeats and alerts into the database, alert
acknowledgements out to the units (and a receipt to a phone for its emergency), the
retained `kb/current` announcement of the knowledge-base bundle (see hub/kb.py), and the
broker logins of phone members whose validity ran out (hub/phone.py `expire_members`).

`posko hub serve` runs this as its own child process, so exactly one process subscribes
however many gunicorn workers there are. Each message becomes a row update plus an
`events` row that every worker's live streams pick up. The other way, every `alert_ack`
event a worker wrote is published here (QoS 1); a cursor in the database advances only
past acks the broker confirmed, so an ack survives a broker that is away, a recycled web
worker and a restarted ingest (at least once; the kiosk ignores a repeat).

Status heartbeats from unit ids the hub does not know are ignored (counted and logged):
anyone on the broker could otherwise fill the fleet page with ghost units. The ingest's
own state (connection, refused subscriptions, counters) is written to
`<state_dir>/hub/ingest-status.json` for `posko doctor`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import threading
import time
import uuid

from sqlalchemy import delete, select

from hub import kb, phone, releases
from hub.alerts import phone_details, record_alert, record_cancel, record_track, repeat_ids
from hub.db import Sessions, database_url, make_engine
from hub.models import Event, KeyValue, Throttle, Unit, utcnow
from posko import topics
from posko.messages import Alert as AlertMessage
from posko.messages import AlertAck, AlertCancel, AlertLocation, BadMessage, Heartbeat
from posko.mqtt import MqttLink
from posko.service import Watchdog

log = logging.getLogger(__name__)

EVENTS_KEEP = dt.timedelta(days=2)
TICK_S = 0.5  # how often new acknowledgements are looked for
KB_CHECK_S = 10.0  # how often a newly stored kb/current is looked for
PRUNE_S = 60.0  # how often old events are pruned
ACK_CURSOR = "ingest_ack_cursor"  # KeyValue: id of the last alert_ack event confirmed sent
ACK_BATCH = 200


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
                             on_connect=self._on_connect)
        self.bad_messages = 0
        self.unknown_units = 0  # status heartbeats from ids the hub does not know
        self.alerts = {"new": 0, "repeat": 0, "duplicate": 0}
        self.tracks: dict[str, int] = {}  # hub.alerts.record_track's outcomes
        self.cancels: dict[str, int] = {}  # hub.alerts.record_cancel's outcomes
        self.acks_sent = 0
        self._kb_announced: bytes | None = None
        self._release_announced: bytes | None = None
        self._ack_cursor: int | None = None  # loaded on the first publish_acks()
        self._acks_handed = 0  # highest event id handed to the link
        self._acks_inflight: dict[int, list] = {}  # event id -> its paho MQTTMessageInfos
        self._unknown_logged: set[str] = set()

    def _on_connect(self) -> None:
        self.announce_kb()
        self.announce_release()

    def start(self) -> Ingest:
        kb.ensure_current(self.settings)  # the first start publishes the configured KB
        self.link.subscribe(topics.all_unit_status(self.root), self.on_status, qos=1)
        self.link.subscribe(topics.all_alerts(self.root), self.on_alert, qos=1)
        self.link.subscribe(topics.all_alert_locations(self.root), self.on_alert_location, qos=1)
        self.link.subscribe(topics.all_alert_cancels(self.root), self.on_alert_cancel, qos=1)
        self.link.start()
        return self

    def status(self) -> dict:
        """What `posko doctor` and the log show about this process (JSON-ready)."""
        return {"pid": os.getpid(), "time": time.time(), "connected": self.link.connected.is_set(),
                "broker": f"{self.settings.mqtt.host}:{self.settings.mqtt.port}",
                "refused": dict(self.link.refused), "bad_messages": self.bad_messages,
                "unknown_units": self.unknown_units, "alerts": dict(self.alerts),
                "alert_locations": dict(self.tracks),
                "alert_cancels": dict(self.cancels),
                "acks_sent": self.acks_sent, "acks_waiting": len(self._acks_inflight)}

    def write_status(self) -> None:
        """<state_dir>/hub/ingest-status.json, replaced atomically (0600)."""
        folder = self.settings.state_dir / "hub"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".ingest-status.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.status(), fh)
        os.replace(tmp, folder / "ingest-status.json")

    def publish_acks(self) -> int:
        """Publish `alert_ack` events not yet confirmed by the broker; returns how many were
        handed to the link. The cursor moves only past acks the broker acknowledged."""
        with self.db.writer() as db:
            if self._ack_cursor is None:
                row = db.get(KeyValue, ACK_CURSOR)
                self._ack_cursor = int(row.value) if row is not None else 0
                self._acks_handed = self._ack_cursor
            for event_id, infos in list(self._acks_inflight.items()):
                if all(info.is_published() for info in infos):
                    del self._acks_inflight[event_id]
                    self.acks_sent += len(infos)
            handed = 0
            if self.link.connected.is_set():  # offline, paho resends what it holds on reconnect
                new = db.scalars(select(Event).where(Event.kind == "alert_ack", Event.id > self._acks_handed)
                                 .order_by(Event.id).limit(ACK_BATCH)).all()
                for event in new:
                    self._acks_handed = event.id
                    infos = self._publish_ack(db, event)
                    if infos:
                        self._acks_inflight[event.id] = infos
                        handed += len(infos)
            cursor = (min(self._acks_inflight) - 1) if self._acks_inflight else self._acks_handed
            if cursor > self._ack_cursor:
                self._ack_cursor = cursor
                row = db.get(KeyValue, ACK_CURSOR)
                if row is None:
                    db.add(KeyValue(name=ACK_CURSOR, value=str(cursor)))
                else:
                    row.value = str(cursor)
                db.commit()
            return handed

    def _publish_ack(self, db, event: Event) -> list:
        """One AlertAck for the alert and one for every alert counted on it (a kiosk
        matches the ack to the id it raised). Returns the paho message infos."""
        data = event.data or {}
        try:
            topic = topics.alert_ack(str(data.get("unit", "")), self.root)
        except ValueError:
            log.warning("ack event %s names no valid unit: skipped", event.id)
            return []
        alert_id = str(data.get("id", ""))
        at = event.at.replace(tzinfo=dt.UTC).timestamp()
        return [self.link.publish(topic, AlertAck(alert_id=aid, officer=str(data.get("officer", "")),
                                                  time=at).to_json(), qos=1)
                for aid in [alert_id, *repeat_ids(db, alert_id)]]

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

    def announce_release(self) -> None:
        """Publish the current Posko release (hub/releases.py), retained, if there is one."""
        current = releases.read_current(self.settings)
        if current is not None:
            releases.announce(self.link, self.settings, current)
            self._release_announced = current.to_json()

    def check_kb(self) -> None:
        """Announce a bundle `posko hub kb-publish` stored while it could not reach the broker."""
        current = kb.read_current(self.settings)
        if current is not None and current.to_json() != self._kb_announced and self.link.connected.is_set():
            log.info("announcing knowledge base %s", current.version)
            self.announce_kb()
        release = releases.read_current(self.settings)
        if release is not None and release.to_json() != self._release_announced \
                and self.link.connected.is_set():
            log.info("announcing release %s", release.version)
            self.announce_release()

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
            if unit is None:  # not added on the hub: no ghost units on the fleet page
                self.unknown_units += 1
                if unit_id not in self._unknown_logged and len(self._unknown_logged) < 1000:
                    self._unknown_logged.add(unit_id)
                    log.warning("status from unknown unit id %r ignored (add it: posko hub units add)", unit_id)
                return
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
                update = beat.parts.get("update") if isinstance(beat.parts, dict) else None
                if isinstance(update, dict):
                    unit.update_state = _clean(str(update.get("state", "")))[:32]
                    unit.update_detail = _clean(" ".join(
                        str(update.get(k, "")) for k in ("version", "reason") if update.get(k)))[:240]
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
        try:
            sent = dt.datetime.fromtimestamp(msg.time, dt.UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            sent = utcnow()
        with self.db.writer() as db:
            outcome = record_alert(db, self.settings, alert_id=msg.id, unit_id=unit_id,
                                   posko=msg.posko, source=msg.source, text=msg.text, sent_at=sent,
                                   phone=phone_details(msg))
        self.alerts[outcome] = self.alerts.get(outcome, 0) + 1
        if msg.source == "phone_emergency":
            # A phone has no durable HTTP path: it says "terkirim" only on this receipt, sent
            # after the commit, and again for every repeat of the same id (its retries).
            self.link.publish(topics.alert_ack(unit_id, self.root),
                              AlertAck(alert_id=msg.id, officer="", stage="received").to_json(), qos=1)

    def _phone_follow_up(self, topic: str, payload: bytes, cls, record, counts: dict):
        """A phone's message about its own open emergency (`cls`: AlertLocation or
        AlertCancel), stored by `record` (hub.alerts) in one transaction; its outcome is
        counted in `counts`. Returns (the topic's unit, message, outcome), or None for a bad
        topic or message."""
        unit_id = self._unit_from_topic(topic, 1)
        if unit_id is None:
            return None
        try:
            msg = cls.from_json(payload)
        except BadMessage as exc:
            self.bad_messages += 1
            log.warning("bad %s on %s: %s", cls.KIND, topic, exc)
            return None
        with self.db.writer() as db:
            outcome = record(db, self.settings, unit_id=unit_id, msg=msg)
        counts[outcome] = counts.get(outcome, 0) + 1
        return unit_id, msg, outcome

    def on_alert_location(self, topic: str, payload: bytes) -> None:
        """A phone's newer position while its emergency is open (hub.alerts.record_track)."""
        self._phone_follow_up(topic, payload, AlertLocation, record_track, self.tracks)

    def on_alert_cancel(self, topic: str, payload: bytes) -> None:
        """A phone member calls off their emergency (hub.alerts.record_cancel); the phone says
        the call-off arrived only on this receipt, sent after the commit (and for a repeat)."""
        done = self._phone_follow_up(topic, payload, AlertCancel, record_cancel, self.cancels)
        if done is not None and done[2] != "unknown":
            unit_id, msg, _ = done
            self.link.publish(topics.alert_ack(unit_id, self.root),
                              AlertAck(alert_id=msg.alert_id, officer="", stage="cancelled").to_json(), qos=1)

    def expire_members(self) -> None:
        """A phone member whose validity ran out loses their broker login (hub/phone.py)."""
        with self.db.writer() as db:
            if phone.expire_members(db, self.settings):
                log.info("broker logins rewritten: a phone member's validity ran out")

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
    # Under systemd the loop below pings the watchdog (posko-hub-ingest.service): a hung
    # ingest stops pinging and is restarted.
    watchdog = Watchdog().start()
    watchdog.ready()
    jobs = [(TICK_S, ingest.publish_acks, "publishing acknowledgements"),
            (KB_CHECK_S, ingest.check_kb, "announcing the knowledge base"),
            (PRUNE_S, ingest.prune, "prune"),
            (5.0, ingest.write_status, "writing the status file"),
            (settings.ptt.member_expiry_check_s, ingest.expire_members, "cutting off expired phone members")]
    due = {name: 0.0 for _every, _job, name in jobs}
    due["prune"] = time.monotonic() + PRUNE_S
    reported: dict[str, str] = {}
    try:
        while not stop.wait(TICK_S):
            watchdog.beat()
            now = time.monotonic()
            for every, job, name in jobs:
                if now < due[name]:
                    continue
                due[name] = now + every
                try:
                    job()
                except Exception:
                    log.exception("%s failed", name)
            if ingest.link.refused != reported:  # say it once per change, loudly
                reported = dict(ingest.link.refused)
                for pattern, why in reported.items():
                    log.error("the broker refused the ingest's subscription %s (%s): "
                              "nothing on it reaches the hub; check the hub user's ACL", pattern, why)
    finally:
        watchdog.stopping()
        ingest.stop()
