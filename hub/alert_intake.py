"""`POST /api/v1/alerts`: a unit's emergency over HTTP, the path beside MQTT.

A kiosk keeps every alert in its own durable box and sends it over both paths until the
hub confirms it; this endpoint is that confirmation. The body is a posko.messages.Alert
(JSON); the unit is the token's unit (an alert naming another unit is refused, 403). The
same id again is answered 200 with what the hub holds (including the acknowledgement, so a
kiosk without MQTT still learns that an officer took it); a new one is stored once
(de-duplicated by id, whichever path came first) and answered 201.

Answer: {"id", "first", "received_at", "acked_at", "acked_by"} (times ISO 8601 UTC or null).
"""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, current_app, jsonify, request

from hub.alerts import store_alert
from hub.api import _need_unit, error
from hub.db import get_db
from hub.extensions import csrf
from posko.messages import Alert as AlertMessage
from posko.messages import BadMessage

bp = Blueprint("alert_intake", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

MAX_BODY = 16 * 1024


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from "\ud800" in the JSON
        return False
    return True


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


@bp.post("/alerts")
def post_alert():
    unit, failure = _need_unit()
    if failure:
        return failure
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        return error(413, "too_large", f"the body is larger than {MAX_BODY} bytes",
                     {"body": f"must be at most {MAX_BODY} bytes"})
    try:
        msg = AlertMessage.from_json(raw)
    except BadMessage as exc:
        text = str(exc)
        field = text.split("'")[1] if text.count("'") >= 2 else "body"
        return error(422, "invalid", "the alert is not valid", {field: text})
    except (ValueError, json.JSONDecodeError):
        return error(422, "invalid", "the alert is not valid", {"body": "must be a JSON alert"})
    fields = {}
    for name in ("id", "posko", "text"):
        value = getattr(msg, name)
        if "\x00" in value or not _encodable(value):
            fields[name] = "must be UTF-8 text without NUL characters"
    if not msg.id or len(msg.id) > 64:
        fields["id"] = "must be 1-64 characters"
    if fields:
        return error(422, "invalid", "the alert is not valid", fields)
    unit_id = unit[0]
    if msg.unit != unit_id:
        return error(403, "wrong_unit", "a unit may send only its own alerts",
                     {"unit": f"must be {unit_id}, the unit of this token"})
    settings = current_app.config["POSKO_SETTINGS"]
    db = get_db()
    row, first = store_alert(db, msg, unit_id, settings)  # one rule for MQTT and HTTP
    if not first and row.unit_id != unit_id:
        return error(409, "conflict", "this alert id belongs to another unit", {"id": "is taken"})
    response = jsonify({"id": row.id, "first": first, "received_at": _iso(row.received_at),
                        "acked_at": _iso(row.acked_at), "acked_by": row.acked_by or ""})
    response.status_code = 201 if first else 200
    return response
