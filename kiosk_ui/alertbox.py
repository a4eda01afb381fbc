"""The kiosk's durable alert box: every emergency waits here until the hub has it.

An alert (Darurat -> Ya, an escalated Tanya question, the unit's panic button) is written
to its own small SQLite file (WAL, `synchronous=FULL`) before anything is shown, so a
kiosk restart or a dead link never loses it. `AlertSender` delivers it over every path
that is up: HTTP `POST /api/v1/alerts` to the hub (unit token, idempotent by alert id)
and MQTT on `alert/{unit}` (the local broker and its bridge); the hub de-duplicates.

What a screen may call *sent* (see docs/kiosk.md, "Emergency states"):

* `hub_at`: the hub's own API answered with this alert's id (it is stored at the hub), or
* `bridge_at`: the kiosk saw the alert come back from its local broker while that broker
  reported its bridge to the central broker up (`$SYS/broker/connection/+/state` = 1).

A PUBACK from the local broker alone is *not* sent: with the bridge down the message only
sits in the kiosk's own broker. `state_of()` is the pure rule the screens show.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posko.hubclient import HubClient, HubUnreachable
from posko.messages import Alert

log = logging.getLogger(__name__)

NOT_SENT, SENT, ACKED = "not_sent", "sent", "acked"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,          -- posko.messages.Alert as JSON
    source TEXT NOT NULL,
    created REAL NOT NULL,          -- Unix seconds, when the kiosk stored it
    hub_at REAL,                    -- the hub's API confirmed it (Unix s)
    bridge_at REAL,                 -- back from the local broker with its bridge up (Unix s)
    acked_at REAL,
    acked_by TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_try REAL,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS alerts_created ON alerts (created);
"""


class AlertBoxError(Exception):
    """The alert could not be written to the kiosk's storage."""


@dataclass(frozen=True)
class AlertRecord:
    id: str
    alert: Alert
    created: float
    hub_at: float | None
    bridge_at: float | None
    acked_at: float | None
    acked_by: str
    attempts: int
    last_error: str

    @property
    def sent_at(self) -> float | None:
        """When the alert first counted as sent (Unix s), or None."""
        times = [t for t in (self.hub_at, self.bridge_at) if t is not None]
        return min(times) if times else None

    @property
    def sent_via(self) -> str:
        """"hub" (the hub's API stored it), "bridge" (the broker bridge has it) or ""."""
        if self.hub_at is not None and (self.bridge_at is None or self.hub_at <= self.bridge_at):
            return "hub"
        return "bridge" if self.bridge_at is not None else ""


def state_of(rec: AlertRecord) -> str:
    """The one state a screen shows: acked, sent (waiting for an officer) or not sent."""
    if rec.acked_at is not None:
        return ACKED
    if rec.sent_at is not None:
        return SENT
    return NOT_SENT


def describe(rec: AlertRecord) -> dict[str, Any]:
    """The JSON a screen reads: state and Unix times (the page formats them in the display zone)."""
    return {"alert_id": rec.id, "state": state_of(rec), "source": rec.alert.source,
            "created": rec.created, "sent_at": rec.sent_at, "sent_via": rec.sent_via,
            "acked_at": rec.acked_at, "acked_by": rec.acked_by}


class AlertBox:
    """The SQLite alert store. Each call opens its own short connection (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._listeners: list[Callable[[AlertRecord], None]] = []
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def open(cls, folder: Path) -> AlertBox:
        """Open (or make) `<folder>/alertbox.db`; the folder is made mode 0700.

        Raises AlertBoxError when the file cannot be opened."""
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            return cls(folder / "alertbox.db")
        except (OSError, sqlite3.Error) as exc:
            raise AlertBoxError(f"cannot open the alert box in {folder}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.row_factory = sqlite3.Row
        return db

    def on_change(self, listener: Callable[[AlertRecord], None]) -> None:
        """Call `listener(record)` after every change of an alert's state."""
        self._listeners.append(listener)

    def _changed(self, alert_id: str) -> None:
        rec = self.get(alert_id)
        if rec is None:
            return
        for listener in self._listeners:
            try:
                listener(rec)
            except Exception:  # a screen relay failing must not stop delivery
                log.exception("alert box listener failed")

    def add(self, alert: Alert) -> bool:
        """Store an alert durably (committed before this returns). True when it is new.

        Raises AlertBoxError when it cannot be written (disk full, broken file)."""
        try:
            db = self._connect()
            try:
                cur = db.execute("INSERT OR IGNORE INTO alerts (id, payload, source, created) "
                                 "VALUES (?, ?, ?, ?)",
                                 (alert.id, alert.to_json().decode("utf-8"), alert.source, time.time()))
                new = cur.rowcount == 1
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise AlertBoxError(f"cannot store alert {alert.id}: {exc}") from exc
        if new:
            self._changed(alert.id)
        return new

    def get(self, alert_id: str) -> AlertRecord | None:
        db = self._connect()
        try:
            row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        finally:
            db.close()
        return _record(row) if row else None

    def _rows(self, where: str, args: tuple = ()) -> list[AlertRecord]:
        db = self._connect()
        try:
            rows = db.execute(f"SELECT * FROM alerts WHERE {where} ORDER BY created", args).fetchall()
        finally:
            db.close()
        return [_record(r) for r in rows]

    def undelivered(self) -> list[AlertRecord]:
        """Alerts the hub has not confirmed yet (and no officer has acknowledged)."""
        return self._rows("hub_at IS NULL AND acked_at IS NULL")

    def unacked_since(self, since: float) -> list[AlertRecord]:
        return self._rows("acked_at IS NULL AND created >= ?", (since,))

    def _set(self, alert_id: str, sql: str, args: tuple) -> bool:
        db = self._connect()
        try:
            changed = db.execute(f"UPDATE alerts SET {sql} WHERE id = ?", (*args, alert_id)).rowcount == 1
        finally:
            db.close()
        return changed

    def mark_hub(self, alert_id: str, at: float | None = None) -> None:
        if self._is_null(alert_id, "hub_at") and self._set(
                alert_id, "hub_at = ?, last_error = ''", (at or time.time(),)):
            self._changed(alert_id)

    def mark_bridge(self, alert_id: str, at: float | None = None) -> None:
        if self._is_null(alert_id, "bridge_at") and self._set(alert_id, "bridge_at = ?", (at or time.time(),)):
            self._changed(alert_id)

    def mark_acked(self, alert_id: str, officer: str, at: float | None = None) -> None:
        if self._is_null(alert_id, "acked_at") and self._set(
                alert_id, "acked_at = ?, acked_by = ?", (at or time.time(), officer[:128])):
            self._changed(alert_id)

    def note_try(self, alert_id: str, error: str = "") -> None:
        self._set(alert_id, "attempts = attempts + 1, last_try = ?, last_error = ?",
                  (time.time(), error[:300]))

    def _is_null(self, alert_id: str, column: str) -> bool:
        db = self._connect()
        try:
            row = db.execute(f"SELECT {column} IS NULL FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        finally:
            db.close()
        return bool(row and row[0])


def _record(row: sqlite3.Row) -> AlertRecord:
    return AlertRecord(id=row["id"], alert=Alert.from_json(row["payload"]), created=row["created"],
                       hub_at=row["hub_at"], bridge_at=row["bridge_at"], acked_at=row["acked_at"],
                       acked_by=row["acked_by"], attempts=row["attempts"], last_error=row["last_error"])


def hub_confirms(status: int, data: Any, alert_id: str) -> bool:
    """True when an answer is the hub's own receipt of this alert (not a captive portal's 200)."""
    return status in (200, 201) and isinstance(data, dict) and data.get("id") == alert_id


class AlertSender:
    """Delivers every undelivered alert over HTTP and MQTT until the hub has it.

    `publish_mqtt(alert)` is the bus's publisher (or None without MQTT). After the hub has
    an alert, the sender keeps asking it (the same idempotent POST) for the officer's
    acknowledgement for `ack_poll_window_s`, so the screen learns of the ack even when the
    MQTT path is down.
    """

    def __init__(self, box: AlertBox, client: HubClient, publish_mqtt: Callable[[Alert], None] | None = None,
                 interval_s: float = 2.0, timeout_s: float = 3.0, mqtt_repeat_s: float = 20.0,
                 ack_poll_s: float = 5.0, ack_poll_window_s: float = 3600.0) -> None:
        self.box = box
        self.client = client
        self.publish_mqtt = publish_mqtt
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.mqtt_repeat_s = mqtt_repeat_s
        self.ack_poll_s = ack_poll_s
        self.ack_poll_window_s = ack_poll_window_s
        self._mqtt_sent: dict[str, float] = {}
        self._ack_polled: dict[str, float] = {}
        self._lock = threading.Lock()  # one delivery pass at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AlertSender:
        self._thread = threading.Thread(target=self._run, name="kiosk-alert-sender", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(5)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver()
            except Exception:
                log.exception("alert delivery pass failed")
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def send_now(self, alert_id: str) -> AlertRecord | None:
        """One delivery try of this alert now (HTTP within `timeout_s`, MQTT queued)."""
        rec = self.box.get(alert_id)
        if rec is not None:
            with self._lock:
                self._deliver_one(rec)
        return self.box.get(alert_id)

    def deliver(self) -> None:
        with self._lock:
            for rec in self.box.undelivered():
                self._deliver_one(rec)
            now = time.time()
            for rec in self.box.unacked_since(now - self.ack_poll_window_s):
                if rec.hub_at is not None and now - self._ack_polled.get(rec.id, 0) >= self.ack_poll_s:
                    self._ack_polled[rec.id] = now
                    self._post(rec)

    def _deliver_one(self, rec: AlertRecord) -> None:
        now = time.monotonic()
        if self.publish_mqtt is not None and rec.bridge_at is None and \
                now - self._mqtt_sent.get(rec.id, -1e9) >= self.mqtt_repeat_s:
            try:
                self.publish_mqtt(rec.alert)
                self._mqtt_sent[rec.id] = now
            except Exception as exc:  # no MQTT link now: HTTP may still carry it (tried every pass)
                log.debug("alert %s: MQTT publish failed: %s", rec.id, exc)
        if rec.hub_at is None:
            self._post(rec)

    def _post(self, rec: AlertRecord) -> None:
        try:
            answer = self.client.post_alert(rec.alert.to_json(), timeout_s=self.timeout_s)
        except HubUnreachable as exc:
            self.box.note_try(rec.id, str(exc))
            return
        if answer.from_hub and hub_confirms(answer.status, answer.data, rec.id):
            self.box.mark_hub(rec.id)
            if answer.data.get("acked_by"):
                self.box.mark_acked(rec.id, str(answer.data["acked_by"]))
        else:
            self.box.note_try(rec.id, f"HTTP {answer.status}: {answer.text[:200]}")
            log.warning("alert %s: the hub did not take it (HTTP %s)", rec.id, answer.status)
