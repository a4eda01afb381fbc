"""Units' logins at the central broker (their bridges): given at enrolment, changed on demand,
removed with the unit's revocation.

A unit's MQTT user is its id; its password is random, made here, handed to the unit once (in
the enrolment answer, or in the answer to `POST /api/v1/broker-login` with its hub token) and
kept only as a mosquitto_passwd hash. The hash goes into the managed password file through the
same sync as the phone members' logins (hub.phone.sync_broker), which reloads Mosquitto without
restarting it.

Every login has a short random id. The unit keeps the id beside its password and asks
`GET /api/v1/broker-login` now and then whether the hub's id is still the same
(firmware/broker_login.py). A rotation (`posko hub units rotate-broker UNIT`, or the fleet page)
removes the login at once: the broker reloads and drops the bridge, the old password stops
working, and the hub has no id for the unit any more; the unit sees the difference, asks for a
new login and rewrites its bridge. An answer lost on its way leaves the unit with an id the hub
no longer has, which it notices the same way.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from hub.models import Unit, utcnow
from hub.phone import BrokerNotManaged, hash_password, sync_broker
from hub.units import UnitError, is_unit_id

# A unit may ask for a new login at most this often (each one rewrites and reloads the broker).
MIN_INTERVAL_S = 10


class TooSoon(UnitError):
    """The unit got a new login less than MIN_INTERVAL_S ago."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"a new broker login was made less than {MIN_INTERVAL_S} s ago")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class BrokerLogin:
    """What the unit gets once: its broker user, its password and the login's id."""

    user: str
    password: str
    login: str

    def to_json(self) -> dict[str, str]:
        return {"user": self.user, "password": self.password, "login": self.login}


def managed(settings) -> bool:
    """True when this hub writes the broker's password file (ptt.broker_password_file)."""
    return bool(settings.ptt.broker_password_file)


def current_login(session: Session, unit_id: str) -> str | None:
    """The id of the unit's login the broker accepts now, or None (none, rotated, revoked)."""
    unit = session.get(Unit, unit_id) if is_unit_id(unit_id) else None
    if unit is None or unit.revoked_at is not None or not unit.broker_password_line:
        return None
    return unit.broker_login_id


def issue(session: Session, settings, unit_id: str, *, now: dt.datetime | None = None,
          throttle: bool = True) -> BrokerLogin:
    """A fresh login for the unit, written to the broker's files and reloaded; the unit's
    previous password stops working. Committed.

    BrokerNotManaged when the hub does not manage broker logins; UnitError for an unknown or
    revoked unit; TooSoon (with `throttle`) for a second login within MIN_INTERVAL_S; OSError
    or ValueError when the files could not be written or the broker not reloaded (the unit's
    previous login is then kept in the hub's data, and the files say what they said)."""
    if not managed(settings):
        raise BrokerNotManaged("ptt.broker_password_file is not set")
    unit = session.get(Unit, unit_id) if is_unit_id(unit_id) else None
    if unit is None or unit.revoked_at is not None:
        raise UnitError(f"no active unit {unit_id}")
    now = now or utcnow()
    if throttle and unit.broker_login_at is not None:
        age = (now - unit.broker_login_at).total_seconds()
        if 0 <= age < MIN_INTERVAL_S:
            raise TooSoon(int(MIN_INTERVAL_S - age) + 1)
    before = (unit.broker_password_line, unit.broker_login_id, unit.broker_login_at)
    password = secrets.token_urlsafe(24)
    unit.broker_password_line = hash_password(unit.id, password)
    unit.broker_login_id = secrets.token_hex(6)
    unit.broker_login_at = now
    session.commit()
    try:
        sync_broker(session, settings)
    except (OSError, ValueError):
        unit = session.get(Unit, unit_id)
        unit.broker_password_line, unit.broker_login_id, unit.broker_login_at = before
        session.commit()
        raise
    return BrokerLogin(user=unit.id, password=password, login=unit.broker_login_id)


def drop(session: Session, settings, unit_id: str) -> bool:
    """Remove the unit's broker login now (a rotation: the unit then asks for a new one).
    Committed; True when the broker's files were rewritten (False: the hub does not manage
    them). UnitError for an unknown unit; OSError or ValueError from the sync (the login is
    gone from the hub's data; the next sync removes it from the broker's files)."""
    unit = session.get(Unit, unit_id) if is_unit_id(unit_id) else None
    if unit is None:
        raise UnitError(f"no unit {unit_id}")
    unit.broker_password_line = None
    unit.broker_login_id = None
    unit.broker_login_at = None  # the unit may fetch its new login at once
    session.commit()
    return resync(session, settings)


def resync(session: Session, settings) -> bool:
    """Rewrite and reload the broker's files (after a revocation); False when the hub does
    not manage them. OSError or ValueError from the sync."""
    if not managed(settings):
        return False
    sync_broker(session, settings)
    return True
