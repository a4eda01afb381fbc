"""Count failed attempts per client key in the database, so every gunicorn worker agrees."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub.models import Throttle, utcnow


def failures(session: Session, key: str, window_s: int) -> int:
    since = utcnow() - dt.timedelta(seconds=window_s)
    return session.scalar(select(func.count()).select_from(Throttle)
                          .where(Throttle.key == key, Throttle.at >= since)) or 0


def record_failure(session: Session, key: str, window_s: int) -> None:
    """Add one failure and forget this key's failures older than the window; commits."""
    now = utcnow()
    session.add(Throttle(key=key[:128], at=now))
    session.execute(delete(Throttle).where(Throttle.key == key,
                                           Throttle.at < now - dt.timedelta(seconds=window_s)))
    session.commit()
