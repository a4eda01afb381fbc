"""The intake API (`/api/v1`) the kiosks call; described in `hub/data/openapi.yaml`.

Every error is JSON: {"error": code, "message": ..., "fields": {field: problem}}.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, current_app, g, jsonify, request, send_file
from sqlalchemy import select
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from hub import intake, secrets_store, throttle, unanswered, unit_logins, units
from hub.db import get_db, sessions
from hub.kb import bundle_path
from hub.models import Report, utcnow
from hub.texts import label, message
from hub.validation import Invalid, is_sha256
from posko.tickets import format_ticket, is_valid_pin, parse_ticket

bp = Blueprint("api", __name__, url_prefix="/api/v1")

SERVICE = "posko-hub"  # named by GET /ping; posko.hubclient.SERVICE checks it
RECEIPTS_MAX = 500

OPENAPI_FILE = Path(__file__).resolve().parent / "data" / "openapi.yaml"


def error(status: int, code: str, msg: Any, fields: dict[str, str] | None = None,
          headers: dict[str, str] | None = None) -> Response:
    """A JSON error; msg may be {"id": …, "en": …} (words a resident reads): then `message`
    is the Indonesian text and `message_en` the English one."""
    body: dict[str, Any] = {"error": code}
    if isinstance(msg, dict):
        body["message"], body["message_en"] = msg["id"], msg["en"]
    else:
        body["message"] = msg
    if fields:
        body["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _settings():
    return current_app.config["POSKO_SETTINGS"]


@bp.before_request
def _limits() -> None:
    hub = _settings().hub
    is_photo = request.endpoint == "api.put_photo"
    request.max_content_length = hub.photo_max_bytes if is_photo else hub.report_max_bytes


def _json_body() -> Any:
    raw = request.get_data(cache=request.endpoint == "api.post_report")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise Invalid({"body": "must be valid JSON (UTF-8)"}) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bearer() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _authenticated_unit():
    """(id, name) of the calling unit, looked up on a reader so no write lock is held yet."""
    token = _bearer()
    if not token:
        return None
    # A bare connection, not an ORM session: this runs on every API call.
    with sessions().engine.connect() as conn:
        return units.unit_for_token(conn, token)


def _need_unit():
    unit = _authenticated_unit()
    if unit is None:
        token = _bearer()
        if token:
            with sessions().reader() as reader:  # random tokens cost no write
                duplicate = units.replaced_token_owner(reader, token)
            if duplicate:
                with sessions().writer() as writer:
                    units.note_duplicate(writer, duplicate)
                return None, error(
                    401, "token_replaced",
                    f"unit {duplicate} was enrolled again elsewhere: this machine's token was "
                    "replaced (two machines on one unit id); enrol this machine under its own id",
                    headers={"WWW-Authenticate": 'Bearer realm="posko"'})
        return None, error(401, "unauthorized", "a valid unit token is required (Authorization: Bearer …)",
                           headers={"WWW-Authenticate": 'Bearer realm="posko"'})
    g.unit = unit
    return unit, None


@bp.errorhandler(Invalid)
def _invalid(exc: Invalid):
    get_db().rollback()
    return error(422, "invalid", "some fields are not valid", exc.fields)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    return error(413, "too_large", f"the body is larger than {request.max_content_length} bytes",
                 {"body": f"must be at most {request.max_content_length} bytes"})


def api_http_error(exc: HTTPException):
    """JSON for 404/405/400… anywhere under /api/ (registered on the app)."""
    return error(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description)


@bp.get("/openapi.json")
def openapi():
    return jsonify(_openapi())


@bp.get("/ping")
def ping():
    """Who answers, and the hub's clock: a kiosk's probe checks it is the hub (not a captive
    portal) and learns how far its own clock is off (a Pi has no real-time clock)."""
    now = dt.datetime.now(dt.UTC)
    return jsonify({"service": SERVICE, "api": 1,
                    "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z")})


@cache
def _openapi() -> dict[str, Any]:
    with open(OPENAPI_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@bp.post("/enroll")
def enroll():
    hub = _settings().hub
    key = f"enrol:{request.remote_addr}"
    # Counted before the code is checked, in one step (hub.throttle); a right code gives it back.
    verdict = throttle.take(sessions().writer, [throttle.Limit(key, hub.enrol_fail_limit, 3600)])
    if not verdict.allowed:
        return error(429, "too_many_tries", "too many wrong enrolment codes; try again later",
                     headers={"Retry-After": str(verdict.retry_after_s)})
    db = get_db()
    body = _json_body()
    fields = {}
    if not isinstance(body, dict):
        raise Invalid({"body": "must be a JSON object with unit and code"})
    for name in ("unit", "code"):
        if not isinstance(body.get(name), str) or not body.get(name).strip():
            fields[name] = "is required (a string)"
        elif len(body[name]) > 64:
            fields[name] = "must be at most 64 characters"
    extra = sorted(set(body) - {"unit", "code"})
    for name in extra:
        fields[str(name)[:64]] = "is not a known field"
    if not fields and not units.is_unit_id(body["unit"].strip()):
        fields["unit"] = "must be 1-64 letters, digits, '-' or '_'"
    if not fields and "\x00" in body["code"]:
        fields["code"] = "must not contain NUL characters"
    if fields:
        raise Invalid(fields)
    token = units.enrol(db, body["unit"].strip(), body["code"])
    if token is None:
        db.rollback()
        return error(403, "bad_code", "unknown unit, or the code is wrong, used or expired",
                     {"code": "is wrong, used or expired"})
    unit_id = body["unit"].strip()
    answer = {"token": token, "unit": unit_id}
    if unit_logins.managed(_settings()):
        # The unit's login at the central broker, shown once. Without it (the files could not
        # be written now) the unit is still enrolled and asks for it later (POST /broker-login).
        try:
            answer["broker"] = unit_logins.issue(db, _settings(), unit_id, throttle=False).to_json()
        except (unit_logins.BrokerNotManaged, units.UnitError, OSError, ValueError) as exc:
            current_app.logger.error("enrolment of %s: no broker login yet: %s", unit_id, exc)
    db.close()
    throttle.forgive(sessions().writer, [key])
    return jsonify(answer)


@bp.get("/broker-login")
def get_broker_login():
    """Which broker login the hub holds for the calling unit now: its id (null after a
    rotation, or before the first), so the unit knows when to ask for a new one."""
    unit, failure = _need_unit()
    if failure:
        return failure
    managed = unit_logins.managed(_settings())
    login = unit_logins.current_login(get_db(), unit.id) if managed else None
    return jsonify({"unit": unit.id, "user": unit.id, "managed": managed, "login": login})


@bp.post("/broker-login")
def post_broker_login():
    """A new broker login for the calling unit (its previous password stops working), shown
    once: {"user", "password", "login"}."""
    unit, failure = _need_unit()
    if failure:
        return failure
    if request.get_data(cache=False).strip() not in (b"", b"{}"):
        raise Invalid({"body": "must be empty or {}"})
    db = get_db()
    try:
        login = unit_logins.issue(db, _settings(), unit.id)
    except unit_logins.BrokerNotManaged:
        return error(409, "not_managed", "this hub does not manage broker logins (ptt.broker_password_file)")
    except unit_logins.TooSoon as exc:
        return error(429, "too_soon", str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    except (OSError, ValueError) as exc:
        current_app.logger.error("broker login of %s: broker not updated: %s", unit.id, exc)
        return error(503, "broker_unavailable", "the broker's logins could not be updated now; try again later",
                     headers={"Retry-After": "30"})
    return jsonify({"unit": unit.id, **login.to_json()})


@bp.post("/reports")
def post_report():
    unit, failure = _need_unit()
    if failure:
        return failure
    raw = request.get_data(cache=True)
    if request.content_length is not None and len(raw) != request.content_length:
        # The connection broke mid-body: nothing to judge (and nothing to quarantine); the
        # kiosk never sees this answer and sends the whole body again.
        return error(400, "incomplete", "the body ended before its Content-Length")
    try:
        clean, digest = intake.prepare(_json_body())
    except Invalid as exc:
        # Kept for an officer (fleet page) instead of lost: its ticket may have been shown.
        get_db().rollback()
        with sessions().writer() as writer:
            intake.quarantine(writer, unit.id, raw, exc.fields)
        raise
    status, answer = current_app.extensions["posko_batcher"].submit(unit, clean, digest)
    response = jsonify(answer)
    response.status_code = status
    return response


@bp.put("/photos/<sha256>")
def put_photo(sha256: str):
    unit, failure = _need_unit()
    if failure:
        return failure

    if not is_sha256(sha256):
        return error(422, "invalid", "the path must end in the photo's SHA-256",
                     {"sha256": "must be 64 lower-case hex characters"})
    data = request.get_data(cache=False)
    if not data:
        return error(422, "invalid", "the body is empty", {"body": "must hold the image bytes"})
    status, answer = intake.store_photo(sessions(), unit, sha256, data, _settings().hub.photo_max_pixels)
    response = jsonify(answer)
    response.status_code = status
    return response


@bp.get("/tickets/<ticket>")
def get_ticket(ticket: str):
    hub = _settings().hub
    unit = _authenticated_unit()
    try:
        canonical = parse_ticket(ticket)
    except ValueError:
        canonical = None
    limits = throttle.ticket_limits(unit.id if unit is not None else None, request.remote_addr or "",
                                    canonical, hub)
    verdict = throttle.take(sessions().writer, limits)  # checked and counted in one step
    if not verdict.allowed:
        return error(429, "too_many_tries", message("too_many_tries"),
                     headers={"Retry-After": str(verdict.retry_after_s)})
    db = get_db()
    pin = request.args.get("pin", "")
    report = None
    if canonical and is_valid_pin(pin):
        found = db.scalar(select(Report).where(Report.ticket == canonical))
        if found is not None and found.pin_hash == secrets_store.pin_hash(db, canonical, pin):
            report = found
    if report is None:
        return error(404, "not_found", message("ticket_not_found"))
    throttle.forgive(sessions().writer, [lim.key for lim in limits])  # a right PIN is no failure
    return jsonify({
        "ticket": report.ticket, "ticket_display": format_ticket(report.ticket),
        "state": report.state, "state_label": label("states", report.state),
        "state_label_en": label("states", report.state, "en"),
        "note": report.public_note, "updated": intake.iso(report.updated_at),
    })


@bp.post("/receipts")
def post_receipts():
    """Proof of delivery: {"ids": [...]} -> {"receipts": {id: digest}} for this unit's
    reports the hub holds (an id it lacks is absent). At most RECEIPTS_MAX ids a call."""
    unit, failure = _need_unit()
    if failure:
        return failure
    body = _json_body()
    if not isinstance(body, dict) or set(body) - {"ids"}:
        raise Invalid({"body": "must be a JSON object with ids"})
    ids = body.get("ids")
    if not isinstance(ids, list) or len(ids) > RECEIPTS_MAX or not all(isinstance(i, str) and len(i) <= 64
                                                                        for i in ids):
        raise Invalid({"ids": f"must be a list of at most {RECEIPTS_MAX} report ids"})
    found = intake.receipts(get_db(), unit.id, sorted(set(ids)))
    return jsonify({"receipts": found, "unit": unit.id,
                    "time": intake.iso(utcnow())})


@bp.post("/unanswered")
def post_unanswered():
    """A unit's unanswered questions (scrubbed on the unit): {"items": [{day, q, key, action,
    best}]} -> {"stored": new lines}. A line sent again is not counted twice."""
    unit, failure = _need_unit()
    if failure:
        return failure

    try:
        items = unanswered.parse_items(_json_body())
    except unanswered.UnansweredInvalid as exc:
        raise Invalid(exc.fields) from None
    stored = unanswered.store(get_db(), unit.id, items) if items else 0
    return jsonify({"stored": stored, "received": len(items), "unit": unit.id})


@bp.get("/kb/<version>")
def get_kb_bundle(version: str):
    """A knowledge-base bundle by version (announced on `kb/current`), for enrolled units."""
    _unit, failure = _need_unit()
    if failure:
        return failure


    path = bundle_path(_settings(), version)
    if path is None:
        return error(404, "not_found", f"no knowledge-base bundle {version[:64]!r}")
    # A version names fixed bytes: a unit (or a proxy) may keep it for good.
    return send_file(path, mimetype="application/gzip", as_attachment=True,
                     download_name=f"kb-{version}.tar.gz", max_age=31536000, conditional=True)
