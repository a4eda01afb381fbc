"""Units: add, enrol, rotate, revoke. Used by the CLI, the dashboard and the API.

The hub keeps only SHA-256 hashes of enrolment codes and tokens. Rotating gives a new
one-time code; the unit's current token keeps working until it enrols with that code,
which replaces the token. Revoking stops the token and the unit's broker login at once
(hub/unit_logins.py gives and changes that login).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Unit, utcnow
from hub.secrets_store import new_enrol_code, new_token, normalise_code, sha256_hex
from posko.errors import PoskoError
from posko.topics import check_id


class UnitError(PoskoError, ValueError):
    """A unit operation that cannot be done (unknown id, already there …)."""


def add_unit(session: Session, unit_id: str, name: str, valid_h: int) -> str:
    """Create a unit and return its one-time enrolment code (committed)."""
    try:
        check_id("unit", unit_id)
    except ValueError as exc:
        raise UnitError(str(exc)) from None
    if session.get(Unit, unit_id) is not None:
        raise UnitError(f"unit {unit_id} exists already; use rotate to give it a new code")
    unit = Unit(id=unit_id, name=name or unit_id, created_at=utcnow(), status="unknown", version="",
                uptime_s=0.0, disk_free_mb=0.0, outbox_pending=0, outbox_oldest_s=0.0, models={},
                talk_group="", interval_s=30.0)
    session.add(unit)
    code = _give_code(unit, valid_h)
    session.commit()
    return code


def rotate(session: Session, unit_id: str, valid_h: int) -> str:
    """A new one-time code for an existing (or revoked) unit (committed)."""
    unit = _get(session, unit_id)
    code = _give_code(unit, valid_h)
    session.commit()
    return code


def revoke(session: Session, unit_id: str) -> None:
    """Stop the unit's token, any pending code and its broker login at once (committed; the
    caller rewrites the broker's files: hub.unit_logins.resync)."""
    unit = _get(session, unit_id)
    unit.token_hash = None
    unit.broker_password_line = None
    unit.broker_login_id = None
    unit.code_hash = None
    unit.code_expires_at = None
    unit.revoked_at = utcnow()
    session.commit()


def enrol(session: Session, unit_id: str, code: str) -> str | None:
    """Exchange a valid one-time code for a new token; None when unit or code is wrong."""
    unit = session.get(Unit, unit_id) if is_unit_id(unit_id) else None
    if unit is None or not unit.code_hash or unit.code_expires_at is None:
        return None
    if unit.code_expires_at < utcnow() or sha256_hex(normalise_code(code)) != unit.code_hash:
        return None
    token = new_token()
    if unit.token_hash:
        # Kept so that a request still carrying the replaced token is known for what it
        # is: a second machine on this unit id (note_replaced_token).
        unit.previous_token_hash = unit.token_hash
    unit.token_hash = sha256_hex(token)
    unit.token_created_at = utcnow()
    unit.code_hash = None
    unit.code_expires_at = None
    unit.revoked_at = None
    session.commit()
    return token


def is_unit_id(value: object) -> bool:
    """True for a safe unit id (what MQTT topics and the database accept)."""
    try:
        check_id("unit", value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return True


def unit_for_token(session: Session, token: str):
    """(id, name) of the unit holding this token, or None."""
    if not token or "\x00" in token:
        return None
    # Only the columns requests need: the hot path does not load the whole row.
    return session.execute(select(Unit.id, Unit.name).where(Unit.token_hash == sha256_hex(token),
                                                           Unit.revoked_at.is_(None))).first()


def replaced_token_owner(session: Session, token: str) -> str | None:
    """The unit whose last enrolment replaced this token, or None (read only)."""
    if not token or "\x00" in token:
        return None
    return session.scalar(select(Unit.id).where(Unit.previous_token_hash == sha256_hex(token)))


def note_duplicate(session: Session, unit_id: str) -> None:
    """Count a request from a second machine on this unit id (the fleet page shows it). Commits."""
    unit = session.get(Unit, unit_id)
    if unit is None:
        return
    unit.duplicate_seen_at = utcnow()
    unit.duplicate_count = (unit.duplicate_count or 0) + 1
    session.commit()


def list_units(session: Session) -> list[Unit]:
    return list(session.scalars(select(Unit).order_by(Unit.id)))


def _get(session: Session, unit_id: str) -> Unit:
    unit = session.get(Unit, unit_id) if is_unit_id(unit_id) else None
    if unit is None:
        raise UnitError(f"no unit {unit_id}")
    return unit


def _give_code(unit: Unit, valid_h: int) -> str:
    code = new_enrol_code()
    unit.code_hash = sha256_hex(normalise_code(code))
    unit.code_expires_at = utcnow() + dt.timedelta(hours=valid_h)
    return code
