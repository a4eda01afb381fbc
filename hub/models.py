"""The hub's tables. Alembic's `hub/migrations/versions/` creates exactly these.

Times are stored as naive UTC (`utcnow()`), the same on SQLite and PostgreSQL; pages show
them in the configured display time zone.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


def utcnow() -> dt.datetime:
    """Now as naive UTC, the form every time column holds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class User(Base):
    """An officer who logs in to the dashboard."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # operator | supervisor | admin
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def label(self) -> str:
        return self.display_name or self.username


class Unit(Base):
    """A kiosk or PTT unit: its enrolment, its token hash and its last heartbeat."""

    __tablename__ = "units"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    code_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    token_created_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # online | offline | unknown
    version: Mapped[str] = mapped_column(String(64), default="")
    # The unit's updater (firmware/updater.py): idle | waiting | installing | trying | ok |
    # rolled-back | failed, and the version and reason it reported.
    update_state: Mapped[str] = mapped_column(String(32), default="", server_default="")
    update_detail: Mapped[str] = mapped_column(String(240), default="", server_default="")
    uptime_s: Mapped[float] = mapped_column(Float, default=0.0)
    disk_free_mb: Mapped[float] = mapped_column(Float, default=0.0)
    outbox_pending: Mapped[int] = mapped_column(Integer, default=0)
    outbox_oldest_s: Mapped[float] = mapped_column(Float, default=0.0)
    models: Mapped[dict] = mapped_column(JSON, default=dict)
    talk_group: Mapped[str] = mapped_column(String(64), default="")
    interval_s: Mapped[float] = mapped_column(Float, default=30.0)
    # The token an enrolment replaced: a request that still carries it comes from a second
    # machine on this unit id (a cloned SD card, a re-enrolled spare).
    previous_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    duplicate_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)  # the posko on the map
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    kb_version: Mapped[str] = mapped_column(String(16), default="")  # the bundle it runs (heartbeat)
    # Its login at the central broker (its bridge; hub/unit_logins.py): the mosquitto_passwd
    # line (hashed; the password itself went to the unit once), a short random id the unit
    # compares with its own to know when to fetch a new login, and when it was made.
    broker_password_line: Mapped[str | None] = mapped_column(Text, nullable=True)
    broker_login_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    broker_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Report(Base):
    """A resident's report as the kiosk sent it, plus its workflow state."""

    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the kiosk's UUID
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    ticket: Mapped[str] = mapped_column(String(8), unique=True)
    pin_hash: Mapped[str] = mapped_column(String(64))
    body_hash: Mapped[str] = mapped_column(String(64))  # canonical JSON of the request body
    category: Mapped[str] = mapped_column(String(16), index=True)
    description: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)
    location_text: Mapped[str] = mapped_column(String(500))
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    reporter_name: Mapped[str] = mapped_column(String(200), default="")
    reporter_phone: Mapped[str] = mapped_column(String(20), default="")  # normalised +62…
    phone_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    photos: Mapped[list] = mapped_column(JSON, default=list)  # SHA-256 hex of each photo
    state: Mapped[str] = mapped_column(String(20), default="baru", index=True)
    reject_reason: Mapped[str] = mapped_column(String(200), default="")
    public_note: Mapped[str] = mapped_column(String(500), default="")
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    severity: Mapped[str] = mapped_column(String(8), default="normal", index=True)  # hub.severity
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # occurred_at is the kiosk's value, implausible for the hub's clock (posko.reports):
    # kept and marked; lists order by received_at.
    time_suspect: Mapped[bool] = mapped_column(Boolean, default=False)
    # the reporter's number was blocked when the report arrived: kept (its ticket was shown)
    # and marked for the officer, who decides.
    phone_blocked: Mapped[bool] = mapped_column(Boolean, default=False)


class Quarantine(Base):
    """A report body the hub refused (422) from an enrolled unit, kept for an officer to read.

    One row per unit and body digest: a kiosk retrying the same body bumps `count`.
    """

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("unit_id", "digest", name="uq_quarantine_unit_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64), index=True)
    report_id: Mapped[str] = mapped_column(String(64), default="")
    digest: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    errors: Mapped[dict] = mapped_column(JSON, default=dict)
    first_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)


class Photo(Base):
    """A photo, re-encoded without metadata, keyed by the SHA-256 of the bytes the kiosk sent."""

    __tablename__ = "photos"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    mime: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    unit_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditEntry(Base):
    """Who did what and when: state changes, notes, assignments, views of reporter data."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str | None] = mapped_column(ForeignKey("reports.id"), nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ReportNote(Base):
    """An officer's note in a report's thread (kept apart from the audit trail)."""

    __tablename__ = "report_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class PhoneBlock(Base):
    """A phone number blocked from filing reports (after repeated 'laporan palsu')."""

    __tablename__ = "phone_blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_key: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    lifted_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    lifted_by: Mapped[str] = mapped_column(String(64), default="")


class Alert(Base):
    """An emergency from a unit; it stays on every dashboard until acknowledged."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64), index=True)
    posko: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    acked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    acked_by: Mapped[str] = mapped_column(String(128), default="")
    # A phone's emergency (source phone_emergency): its talk group and where it was.
    talk_group: Mapped[str] = mapped_column(String(64), default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    accuracy_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    fix_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    no_location: Mapped[str] = mapped_column(String(16), default="")  # why a phone sent none
    # A phone member called their emergency off (posko.messages.AlertCancel): still open
    # until an officer takes it, but no longer ringing.
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Event(Base):
    """A small notice for live streams: every worker's SSE loop reads new rows by id."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # report | report_state | alert | alert_ack | alert_location | alert_cancel | unit
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Throttle(Base):
    """One failed attempt (ticket look-up, enrolment) counted against a client key."""

    __tablename__ = "throttle"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class KeyValue(Base):
    """Per-hub secrets made once (phone-hash key, PIN key)."""

    __tablename__ = "kv"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AlertRepeat(Base):
    """An alert counted on another (a flood or a repeat; see hub.alert_flood). Its own id is
    kept so that the same alert arriving again (MQTT and HTTP, a QoS 1 redelivery) is not
    counted twice."""

    __tablename__ = "alert_repeats"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(64), ForeignKey("alerts.id"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AlertTrackPoint(Base):
    """One position of a phone while its emergency was open (posko.messages.AlertLocation);
    the alert's own lat/lon are the newest, these rows the trail, oldest first by fix_at."""

    __tablename__ = "alert_track"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(64), ForeignKey("alerts.id"), index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float] = mapped_column(Float)
    fix_at: Mapped[dt.datetime] = mapped_column(DateTime)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class KbEntry(Base):
    """The hub's working copy of one knowledge-base entry: what the next publish packs.

    `data` is the entry as the editor holds it (see hub/kb_editor.py): the YAML fields, with
    sources as {title, regulation, url, checked} mappings and optional valid_from/valid_until.
    """

    __tablename__ = "kb_entries"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    topic: Mapped[str] = mapped_column(String(40), index=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class KbChange(Base):
    """A proposed change to one entry (edit, add, retire): a draft until a second person approves."""

    __tablename__ = "kb_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(80), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # edit | add | retire
    before: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="draft", index=True)  # draft | approved | rejected
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    reviewer: Mapped[str] = mapped_column(String(64), default="")
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    evaluation: Mapped[dict] = mapped_column(JSON, default=dict)  # scores of the draft vs published


class KbPublication(Base):
    """One publish (or re-publish) of a bundle from the editor."""

    __tablename__ = "kb_publications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(12), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(Integer, default=0)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    rollback_of: Mapped[str] = mapped_column(String(12), default="")  # re-published version


class KbUnanswered(Base):
    """One question a kiosk could not answer (already scrubbed of personal data on the unit)."""

    __tablename__ = "kb_unanswered"
    __table_args__ = (UniqueConstraint("unit_id", "digest", name="uq_kb_unanswered_unit_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64), index=True)
    digest: Mapped[str] = mapped_column(String(64))  # of the unit's log line: a resend is no new row
    day: Mapped[str] = mapped_column(String(10), index=True)  # YYYY-MM-DD, the unit's day
    question: Mapped[str] = mapped_column(String(500))
    key: Mapped[str] = mapped_column(String(500))
    action: Mapped[str] = mapped_column(String(16), default="fallback")
    best: Mapped[str] = mapped_column(String(80), default="")
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | used | dismissed
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
