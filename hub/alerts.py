"""Alerts: storing emergencies (one per alert id, floods collapsed), the alerts page and
their acknowledgement, one at a time or in bulk.

`record_alert` stores one alert, whichever path it came by (MQTT through the ingest, HTTP
through the kiosk's outbox): the same alert id twice is one alert, and a flood from one
unit becomes one alert with a count (hub.alert_flood).

Acknowledging writes who and when and an `alert_ack` event. The web worker publishes
nothing: the ingest process (the hub's one MQTT link) publishes posko.messages.AlertAck
(QoS 1) on `alert/{unit}/ack` from those events, so the kiosk learns of it even when the
worker that took the click is gone or the broker was away at that moment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from hub.alert_flood import FloodPolicy, Recent, decide
from hub.auth import requires_role
from hub.db import get_db
from hub.models import Alert, AlertRepeat, Event, utcnow
from hub.texts import label
from hub.timefmt import local

bp = Blueprint("alerts", __name__)

BULK_MAX = 500  # alerts one bulk acknowledgement may take


def _clean(text: str) -> str:
    """Text from the wire without NUL characters (PostgreSQL text cannot hold them)."""
    return text.replace("\x00", "").replace("\\u0000", "")


def flood_policy(settings) -> FloodPolicy:
    hub = settings.hub
    return FloodPolicy(rate_limit=hub.alert_rate_limit, window_s=hub.alert_rate_window_s,
                       collapse_s=hub.alert_collapse_s)


def _recent(db, unit_id: str, now: dt.datetime, policy: FloodPolicy) -> list[Recent]:
    since = now - dt.timedelta(seconds=policy.lookback_s)
    last = (select(AlertRepeat.alert_id, func.max(AlertRepeat.received_at).label("last"))
            .group_by(AlertRepeat.alert_id).subquery())
    rows = db.execute(
        select(Alert, last.c.last).outerjoin(last, last.c.alert_id == Alert.id)
        .where(Alert.unit_id == unit_id, or_(Alert.received_at >= since, Alert.acked_at.is_(None)))
        .order_by(Alert.received_at.desc()).limit(200)).all()
    return [Recent(id=a.id, source=a.source, text=a.text, received_at=a.received_at,
                   last_at=max(a.received_at, when or a.received_at), open=a.acked_at is None)
            for a, when in rows]


def record_alert(db, settings, *, alert_id: str, unit_id: str, posko: str, source: str,
                 text: str, sent_at: dt.datetime, now: dt.datetime | None = None) -> str:
    """Store one alert and commit. Returns "new" (a new alert, an `alert` event for every
    dashboard), "repeat" (counted on an open alert of the same unit) or "duplicate" (this
    alert id is already stored, by either path)."""
    alert_id = _clean(alert_id)[:64]
    now = now or utcnow()
    if db.get(Alert, alert_id) is not None or db.get(AlertRepeat, alert_id) is not None:
        return "duplicate"
    posko, text = _clean(posko)[:200], _clean(text)
    policy = flood_policy(settings)
    target = decide(policy, _recent(db, unit_id, now, policy), source, text, now)
    if target is not None:
        db.add(AlertRepeat(id=alert_id, alert_id=target, received_at=now))
        outcome = "repeat"
    else:
        db.add(Alert(id=alert_id, unit_id=unit_id, posko=posko, source=source,
                     text=text, sent_at=sent_at, received_at=now, acked_by=""))
        db.add(Event(kind="alert", at=now, data={
            "id": alert_id, "unit": unit_id, "posko": posko, "source": source,
            "source_label": label("alert_sources", source), "text": text[:500],
            "received_at": now.isoformat() + "Z",
            "received_local": local(now, settings.hub.display_tz, "%H:%M:%S")}))
        outcome = "new"
    try:
        db.commit()
    except IntegrityError:  # the same id stored by the other path just now
        db.rollback()
        return "duplicate"
    return outcome


@dataclass(frozen=True)
class Stored:
    """What the hub holds for one alert id: the alert itself, or for a repeat its own id
    with the state (received, acknowledged) of the alert it was counted on."""

    id: str
    unit_id: str
    received_at: dt.datetime
    acked_at: dt.datetime | None
    acked_by: str


def _held(db, alert_id: str) -> Alert | Stored | None:
    alert = db.get(Alert, alert_id)
    if alert is not None:
        return alert
    repeat = db.get(AlertRepeat, alert_id)
    if repeat is None:
        return None
    target = db.get(Alert, repeat.alert_id)
    return Stored(id=repeat.id, unit_id=target.unit_id, received_at=repeat.received_at,
                  acked_at=target.acked_at, acked_by=target.acked_by)


def store_alert(db, msg, unit_id: str, settings=None) -> tuple[Alert | Stored, bool]:
    """`record_alert` for a posko.messages.Alert (the HTTP path, hub.alert_intake):
    (what the hub holds for msg.id, whether it was stored just now). `settings` defaults
    to the Flask app's."""
    if settings is None:
        from flask import current_app

        settings = current_app.config["POSKO_SETTINGS"]
    try:
        sent = dt.datetime.fromtimestamp(msg.time, dt.UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        sent = utcnow()
    outcome = record_alert(db, settings, alert_id=msg.id, unit_id=unit_id, posko=msg.posko,
                           source=msg.source, text=msg.text, sent_at=sent)
    return _held(db, _clean(msg.id)[:64]), outcome != "duplicate"


def repeat_ids(db, alert_id: str) -> list[str]:
    """The ids counted on alert_id (each kiosk that raised one waits for its own ack)."""
    return list(db.scalars(select(AlertRepeat.id).where(AlertRepeat.alert_id == alert_id)
                           .order_by(AlertRepeat.received_at)))


def open_alerts(session) -> list[Alert]:
    return list(session.scalars(select(Alert).where(Alert.acked_at.is_(None))
                                .order_by(Alert.received_at.desc()).limit(50)))


@dataclass(frozen=True)
class Row:
    """An alert on the alerts page with how many times it came."""

    alert: Alert
    count: int
    last_at: dt.datetime


def _acknowledge(db, alert: Alert, officer: str, now: dt.datetime) -> bool:
    """Mark one alert acknowledged (no commit); False when it already was."""
    if alert.acked_at is not None:
        return False
    alert.acked_at = now
    alert.acked_by = officer
    db.add(Event(kind="alert_ack", at=now,
                 data={"id": alert.id, "unit": alert.unit_id, "officer": officer}))
    return True


@bp.get("/peringatan")
@requires_role("operator")
def alerts():
    db = get_db()
    shown = list(db.scalars(select(Alert).order_by(Alert.received_at.desc()).limit(200)))
    counts = {aid: (n, last) for aid, n, last in db.execute(
        select(AlertRepeat.alert_id, func.count(), func.max(AlertRepeat.received_at))
        .where(AlertRepeat.alert_id.in_([a.id for a in shown]))
        .group_by(AlertRepeat.alert_id)).all()}
    rows = [Row(a, 1 + counts.get(a.id, (0, None))[0],
                max(a.received_at, counts.get(a.id, (0, None))[1] or a.received_at))
            for a in shown]
    return render_template("alerts/alerts.html", rows=rows,
                           open_count=sum(1 for r in rows if r.alert.acked_at is None))


@bp.post("/peringatan/<alert_id>/terima")
@requires_role("operator")
def acknowledge(alert_id: str):
    db = get_db()
    alert = db.get(Alert, alert_id) if len(alert_id) <= 64 and "\x00" not in alert_id else None
    wants_json = request.accept_mimetypes.best == "application/json"
    if alert is None:
        return (jsonify({"error": "not_found"}), 404) if wants_json else ("", 404)
    first = _acknowledge(db, alert, current_user.label, utcnow())
    if first:
        db.commit()
    if wants_json:
        return jsonify({"id": alert.id, "acked_by": alert.acked_by, "first": first})
    return redirect(url_for("alerts.alerts")), 303


@bp.post("/peringatan/terima")
@requires_role("operator")
def acknowledge_many():
    """Acknowledge the ticked alerts (form field `id`, repeated) or, with `semua=1`, every
    open alert (of one unit with `unit=ID`). 400 naming the field when nothing is chosen."""
    db = get_db()
    ids = [i for i in request.form.getlist("id") if 0 < len(i) <= 64 and "\x00" not in i]
    everything = request.form.get("semua") == "1"
    unit = request.form.get("unit", "")
    wants_json = request.accept_mimetypes.best == "application/json"
    if not ids and not everything:
        message = label("alert_page", "bulk_none")
        if wants_json:
            return jsonify({"error": "invalid", "field": "id", "message": message}), 400
        flash(message, "error")
        return redirect(url_for("alerts.alerts")), 303
    query = select(Alert).where(Alert.acked_at.is_(None))
    if everything:
        if unit:
            query = query.where(Alert.unit_id == unit)
    else:
        query = query.where(Alert.id.in_(ids[:BULK_MAX]))
    now = utcnow()
    taken = [a.id for a in db.scalars(query.order_by(Alert.received_at).limit(BULK_MAX))
             if _acknowledge(db, a, current_user.label, now)]
    db.commit()
    if wants_json:
        return jsonify({"acknowledged": taken})
    flash(label("alert_page", "bulk_done").format(n=len(taken)), "ok")
    return redirect(url_for("alerts.alerts")), 303
