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

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from hub.alert_flood import FloodPolicy, Recent, decide
from hub.auth import requires_role
from hub.db import get_db
from hub.models import Alert, AlertRepeat, AlertTrackPoint, Event, utcnow
from hub.phone import PhoneMember
from hub.texts import label
from hub.timefmt import local
from posko.messages import AlertCancel, AlertLocation, Location

bp = Blueprint("alerts", __name__)

BULK_MAX = 500  # alerts one bulk acknowledgement may take
MAX_TRACK = 720  # positions kept per alert's trail: 2 hours at the phone's one per 10 s


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


@dataclass(frozen=True)
class PhoneDetails:
    """What a phone's emergency adds to an alert: its talk group and where it was."""

    group: str = ""
    location: Location | None = None
    no_location: str = ""  # posko.messages.Alert.NO_LOCATION


def _fix_at(location: Location) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(location.time, dt.UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def phone_fields(db, unit_id: str, phone: PhoneDetails) -> dict:
    """The alert's columns for a phone's emergency. The name is the hub's own record of the
    member (never what the phone says), the group only one of the member's groups."""
    member = db.get(PhoneMember, unit_id)
    group = phone.group if member is not None and phone.group in member.group_list else ""
    loc = phone.location
    return {"posko": member.name if member is not None else "", "talk_group": group,
            "lat": loc.lat if loc else None, "lon": loc.lon if loc else None,
            "accuracy_m": loc.accuracy_m if loc else None, "fix_at": _fix_at(loc) if loc else None,
            "no_location": "" if loc else (phone.no_location or "unavailable")}


def alert_event(alert: Alert, settings) -> dict:
    """The `alert` event's data: what a dashboard needs to show the card without a reload."""
    tz = settings.hub.display_tz
    data = {"id": alert.id, "unit": alert.unit_id, "posko": alert.posko, "source": alert.source,
            "source_label": label("alert_sources", alert.source), "text": alert.text[:500],
            "received_at": alert.received_at.isoformat() + "Z",
            "received_local": local(alert.received_at, tz, "%H:%M:%S")}
    if alert.source == "phone_emergency":
        data.update(group=alert.talk_group, location=location_text(alert, tz),
                    lat=alert.lat, lon=alert.lon, map_url=map_url(alert))
    return data


def location_text(alert: Alert, tz: str) -> str:
    """"-6.90750, 109.73000 (±12 m, 14:02:11)" or why there is no location."""
    if alert.lat is None or alert.lon is None:
        return label("no_location", alert.no_location or "unavailable")
    when = f", {local(alert.fix_at, tz, '%H:%M:%S')}" if alert.fix_at else ""
    return f"{alert.lat:.5f}, {alert.lon:.5f} (±{alert.accuracy_m or 0:.0f} m{when})"


def map_url(alert: Alert) -> str:
    """The hub's offline map centred on the alert, or "" without a location."""
    if alert.lat is None or alert.lon is None:
        return ""
    return f"/peta?peringatan={alert.id}"


@dataclass(frozen=True)
class Place:
    text: str  # the location in words, or why there is none
    url: str  # the offline map centred on it, "" without one


@bp.app_template_global("alert_place")
def alert_place(alert: Alert) -> Place:
    """For the alert cards: where a phone's emergency came from."""
    tz = current_app.config["POSKO_SETTINGS"].hub.display_tz
    return Place(location_text(alert, tz), map_url(alert))


def record_alert(db, settings, *, alert_id: str, unit_id: str, posko: str, source: str,
                 text: str, sent_at: dt.datetime, now: dt.datetime | None = None,
                 phone: PhoneDetails | None = None) -> str:
    """Store one alert and commit. Returns "new" (a new alert, an `alert` event for every
    dashboard), "repeat" (counted on an open alert of the same unit) or "duplicate" (this
    alert id is already stored, by either path). `phone`: a phone's emergency
    (source phone_emergency); a repeat with a newer fix moves the open alert's location."""
    alert_id = _clean(alert_id)[:64]
    now = now or utcnow()
    if db.get(Alert, alert_id) is not None or db.get(AlertRepeat, alert_id) is not None:
        return "duplicate"
    posko, text = _clean(posko)[:200], _clean(text)
    extra = phone_fields(db, unit_id, phone) if source == "phone_emergency" else {}
    if extra:
        posko = extra.pop("posko")
    policy = flood_policy(settings)
    target = decide(policy, _recent(db, unit_id, now, policy), source, text, now)
    if target is not None:
        db.add(AlertRepeat(id=alert_id, alert_id=target, received_at=now))
        held = db.get(Alert, target)
        if extra.get("lat") is not None and held is not None and (
                held.fix_at is None or (extra["fix_at"] and extra["fix_at"] > held.fix_at)):
            for key in ("lat", "lon", "accuracy_m", "fix_at", "no_location"):
                setattr(held, key, extra[key])
        outcome = "repeat"
    else:
        alert = Alert(id=alert_id, unit_id=unit_id, posko=posko, source=source,
                      text=text, sent_at=sent_at, received_at=now, acked_by="", **extra)
        db.add(alert)
        db.add(Event(kind="alert", at=now, data=alert_event(alert, settings)))
        outcome = "new"
    try:
        db.commit()
    except IntegrityError:  # the same id stored by the other path just now
        db.rollback()
        return "duplicate"
    return outcome


def _alert_for(db, alert_id: str) -> Alert | None:
    """The alert an id names, itself or the one it was counted on (a repeat)."""
    alert = db.get(Alert, alert_id)
    if alert is None:
        repeat = db.get(AlertRepeat, alert_id)
        alert = db.get(Alert, repeat.alert_id) if repeat is not None else None
    return alert


def record_track(db, settings, *, unit_id: str, msg: AlertLocation,
                 now: dt.datetime | None = None) -> str:
    """Store a phone's newer position for its open emergency and commit.

    Returns "moved" (the alert's position is now this one, its trail one point longer,
    up to MAX_TRACK, and an `alert_location` event tells every dashboard), or why nothing
    was stored: "unknown" (no phone emergency of this member by that id: the topic's
    member, which the broker's ACL binds to the login, must be the alert's), "closed"
    (acknowledged: the phone stops sending then), "stale" (a fix not newer than the one
    held: a redelivery or an older fix), "cancelled" (its member called it off)."""
    alert = _alert_for(db, _clean(msg.alert_id)[:64])
    if alert is None or alert.unit_id != unit_id or alert.source != "phone_emergency":
        return "unknown"
    if alert.acked_at is not None:
        return "closed"
    if alert.cancelled_at is not None:
        return "cancelled"
    fix_at = _fix_at(msg.location)
    if fix_at is None or (alert.fix_at is not None and fix_at <= alert.fix_at):
        return "stale"
    now = now or utcnow()
    points = db.scalar(select(func.count()).select_from(AlertTrackPoint)
                       .where(AlertTrackPoint.alert_id == alert.id)) or 0
    if points == 0 and alert.lat is not None and alert.lon is not None:
        # The trail starts where the alert was raised.
        db.add(AlertTrackPoint(alert_id=alert.id, lat=alert.lat, lon=alert.lon,
                               accuracy_m=alert.accuracy_m or 0.0, fix_at=alert.fix_at or alert.received_at,
                               received_at=alert.received_at))
        points = 1
    loc = msg.location
    if points < MAX_TRACK:
        db.add(AlertTrackPoint(alert_id=alert.id, lat=loc.lat, lon=loc.lon, accuracy_m=loc.accuracy_m,
                               fix_at=fix_at, received_at=now))
        points += 1
    alert.lat, alert.lon, alert.accuracy_m, alert.fix_at, alert.no_location = (
        loc.lat, loc.lon, loc.accuracy_m, fix_at, "")
    tz = settings.hub.display_tz
    db.add(Event(kind="alert_location", at=now, data={
        "id": alert.id, "unit": alert.unit_id, "location": location_text(alert, tz),
        "lat": alert.lat, "lon": alert.lon, "map_url": map_url(alert), "points": points}))
    db.commit()
    return "moved"


def record_cancel(db, settings, *, unit_id: str, msg: AlertCancel,
                  now: dt.datetime | None = None) -> str:
    """A phone member calls off their own emergency; commits.

    Returns "cancelled" (the alert is marked, and an `alert_cancel` event tells every
    dashboard to stop ringing for it; it stays open until an officer takes it, since a call-off
    may be made under duress), "again" (already called off: a redelivery, answered the same),
    or "unknown" (no phone emergency of this member by that id: the topic's member, which the
    broker's ACL binds to the login, must be the alert's). An alert an officer already took is
    marked too (the officer learns the member called it off), with no event to ring off."""
    alert = _alert_for(db, _clean(msg.alert_id)[:64])
    if alert is None or alert.unit_id != unit_id or alert.source != "phone_emergency":
        return "unknown"
    if alert.cancelled_at is not None:
        return "again"
    now = now or utcnow()
    alert.cancelled_at = now
    if alert.acked_at is None:
        db.add(Event(kind="alert_cancel", at=now, data={
            "id": alert.id, "unit": alert.unit_id,
            "cancelled_local": local(now, settings.hub.display_tz, "%H:%M:%S")}))
    db.commit()
    return "cancelled"


def alert_trail(db, alert: Alert) -> list[list[float]]:
    """[[lat, lon], ...] of the alert's trail, oldest first ([] before the phone moved)."""
    rows = db.execute(select(AlertTrackPoint.lat, AlertTrackPoint.lon)
                      .where(AlertTrackPoint.alert_id == alert.id)
                      .order_by(AlertTrackPoint.fix_at, AlertTrackPoint.id)).all()
    return [[lat, lon] for lat, lon in rows]


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


def phone_details(msg) -> PhoneDetails | None:
    """The phone's part of a posko.messages.Alert, None for a unit's alert."""
    if msg.source != "phone_emergency":
        return None
    return PhoneDetails(group=msg.group, location=msg.location, no_location=msg.no_location)


def store_alert(db, msg, unit_id: str, settings=None) -> tuple[Alert | Stored, bool]:
    """`record_alert` for a posko.messages.Alert (the HTTP path, hub.alert_intake):
    (what the hub holds for msg.id, whether it was stored just now). `settings` defaults
    to the Flask app's."""
    if settings is None:
        settings = current_app.config["POSKO_SETTINGS"]
    try:
        sent = dt.datetime.fromtimestamp(msg.time, dt.UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        sent = utcnow()
    outcome = record_alert(db, settings, alert_id=msg.id, unit_id=unit_id, posko=msg.posko,
                           source=msg.source, text=msg.text, sent_at=sent, phone=phone_details(msg))
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
