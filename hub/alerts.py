"""Alerts: the list of emergencies and their acknowledgement.

Acknowledging writes who and when, tells every dashboard (an `alert_ack` event) and
publishes posko.messages.AlertAck (QoS 1) on `alert/{unit}/ack` so the kiosk can show
"Petugas sudah menerima". Each worker publishes through its own MqttLink, started on the
first acknowledgement; it subscribes to nothing (the ingest process does that).
"""

from __future__ import annotations

import datetime as dt
import threading

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from hub.auth import requires_role
from hub.db import get_db
from hub.models import Alert, Event, utcnow
from posko import topics
from posko.messages import AlertAck
from posko.mqtt import MqttLink

bp = Blueprint("alerts", __name__)

_link: MqttLink | None = None
_link_lock = threading.Lock()


def _mqtt(settings) -> MqttLink:
    global _link
    with _link_lock:
        if _link is None:
            _link = MqttLink(settings.mqtt, client_id=None).start()
        return _link


def open_alerts(session) -> list[Alert]:
    return list(session.scalars(select(Alert).where(Alert.acked_at.is_(None))
                                .order_by(Alert.received_at.desc()).limit(50)))


@bp.get("/peringatan")
@requires_role("operator")
def alerts():
    rows = list(get_db().scalars(select(Alert).order_by(Alert.received_at.desc()).limit(200)))
    return render_template("alerts/alerts.html", alerts=rows)


@bp.post("/peringatan/<alert_id>/terima")
@requires_role("operator")
def acknowledge(alert_id: str):
    settings = current_app.config["POSKO_SETTINGS"]
    db = get_db()
    alert = db.get(Alert, alert_id) if len(alert_id) <= 64 and "\x00" not in alert_id else None
    wants_json = request.accept_mimetypes.best == "application/json"
    if alert is None:
        return (jsonify({"error": "not_found"}), 404) if wants_json else ("", 404)
    first = alert.acked_at is None
    if first:
        alert.acked_at = utcnow()
        alert.acked_by = current_user.label
        db.add(Event(kind="alert_ack", at=alert.acked_at,
                     data={"id": alert.id, "unit": alert.unit_id, "officer": alert.acked_by}))
        db.commit()
        ack = AlertAck(alert_id=alert.id, officer=alert.acked_by,
                       time=alert.acked_at.replace(tzinfo=dt.UTC).timestamp())
        try:
            topic = topics.alert_ack(alert.unit_id, settings.mqtt.topic_root)
        except ValueError:
            topic = None
        if topic:
            # Queued by paho when the broker is away, sent on reconnect (QoS 1).
            _mqtt(settings).publish(topic, ack.to_json(), qos=1)
    if wants_json:
        return jsonify({"id": alert.id, "acked_by": alert.acked_by, "first": first})
    return redirect(url_for("alerts.alerts")), 303

