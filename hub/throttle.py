"""Rate limits whose check and count are one step, shared by every gunicorn worker.

Each limit is a counter row (`throttle_counters`) per key. `take()` reads the row locked
inside one short writer transaction, decides, counts and commits: on PostgreSQL the row
is held with SELECT … FOR UPDATE, on SQLite the writer's BEGIN IMMEDIATE (plus the hub's
write lock, hub.db) serialises the whole step. So 60 parallel wrong look-ups against a
limit of 10 get exactly 10 evaluated; checking first and recording afterwards let 20–29
through, all read the same count before any of them wrote.

Attempts are counted *before* they are evaluated; an attempt that turns out fine is given
back with `forgive()` (ticket look-ups, enrolment) or clears the key with `clear()`
(a successful login), so only failures stay counted.

The policies (`window_allows`, `backoff_wait`) are pure functions, tested directly.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import DateTime, Integer, String, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.db import Base
from hub.models import utcnow

STALE_AFTER = dt.timedelta(days=2)  # counters untouched this long are dropped
_calls = itertools.count()


class ThrottleCounter(Base):
    """Attempts counted against one key (a client, a ticket, a client and user name)."""

    __tablename__ = "throttle_counters"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)


@dataclass(frozen=True)
class Limit:
    """At most `limit` counted attempts per `window_s` seconds (fixed window) for `key`;
    with `backoff_after` set, instead: after that many, each further try waits 1, 2, 4 …
    seconds (at most `backoff_max_s`) after the previous one, and the count is kept
    until `window_s` passed without a try."""

    key: str
    limit: int
    window_s: int
    backoff_after: int | None = None
    backoff_max_s: int = 300


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int  # 0 when allowed
    counts: tuple[int, ...]  # each key's count after this step (unchanged when refused)


def window_allows(count: int, window_start: dt.datetime, limit: int, window_s: int,
                  now: dt.datetime) -> tuple[bool, int, int]:
    """(allowed, count before this try within the window, seconds until the window ends).

    A window older than window_s starts again at zero.
    """
    age = max(0.0, (now - window_start).total_seconds())  # a clock a hair behind: same window
    if age >= window_s:
        return True, 0, 0
    left = max(1, int(window_s - age + 0.999))
    return count < limit, count, left


def backoff_wait(failures: int, last_at: dt.datetime | None, after: int, max_s: int,
                 now: dt.datetime) -> int:
    """Seconds still to wait before the next try after `failures` counted tries (0: now).

    After `after` failures each further try waits 2**(failures-after) s, at most max_s.
    """
    if failures < after or last_at is None:
        return 0
    delay = min(2 ** (failures - after), max_s)
    left = (last_at + dt.timedelta(seconds=delay) - now).total_seconds()
    return max(0, int(left + 0.999))


def _insert_missing(db: Session, key: str, now: dt.datetime) -> None:
    table = ThrottleCounter.__table__
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(insert(table).values(key=key, window_start=now, count=0, last_at=None)
               .on_conflict_do_nothing(index_elements=[table.c.key]))


def take(writer_factory, limits: Sequence[Limit], now: dt.datetime | None = None) -> Verdict:
    """Check every limit and, only if all allow, count one attempt on each; one transaction.

    writer_factory: a hub.db.Sessions.writer (a session whose transaction takes the write
    lock). Commits. Raises SQLAlchemy errors when the database is unreachable.
    """
    fixed_now = now
    keys = [lim.key[:160] for lim in limits]
    with writer_factory() as db:
        rows = []
        for key in sorted(set(keys)):  # one lock order everywhere: no deadlock on PostgreSQL
            _insert_missing(db, key, fixed_now or utcnow())
        locked = {row.key: row for row in db.scalars(
            select(ThrottleCounter).where(ThrottleCounter.key.in_(keys))
            .order_by(ThrottleCounter.key).with_for_update())}
        # The time once the rows are ours: a try that waited for the lock is not older
        # than the one it waited for.
        now = fixed_now or utcnow()
        wait = 0
        plans = []
        for lim, key in zip(limits, keys, strict=True):
            row = locked[key]
            rows.append(row)
            if lim.backoff_after is not None:
                expired = row.last_at is None or (now - row.last_at).total_seconds() >= lim.window_s
                count = 0 if expired else row.count
                left = backoff_wait(count, row.last_at, lim.backoff_after, lim.backoff_max_s, now)
                if not expired and count >= lim.limit:
                    left = max(left, int(lim.window_s - (now - row.last_at).total_seconds() + 0.999))
                plans.append((row, count + 1, now if expired else row.window_start))
            else:
                allowed, count, left = window_allows(row.count, row.window_start, lim.limit,
                                                     lim.window_s, now)
                if allowed:
                    left = 0
                plans.append((row, count + 1, row.window_start if count else now))
            wait = max(wait, left)
        if wait:
            counts = tuple(r.count for r in rows)
            db.rollback()
            return Verdict(False, wait, counts)
        for row, count, start in plans:
            row.count, row.window_start, row.last_at = count, start, now
        if next(_calls) % 64 == 0:
            db.execute(delete(ThrottleCounter).where(ThrottleCounter.last_at < now - STALE_AFTER))
        counts = tuple(row.count for row in rows)
        db.commit()
    return Verdict(True, 0, counts)


def forgive(writer_factory, keys: Sequence[str]) -> None:
    """Give back one counted attempt on each key (the attempt was not a failure); commits."""
    with writer_factory() as db:
        db.execute(update(ThrottleCounter)
                   .where(ThrottleCounter.key.in_([k[:160] for k in keys]), ThrottleCounter.count > 0)
                   .values(count=ThrottleCounter.count - 1))
        db.commit()


def touch(writer_factory, keys: Sequence[str]) -> None:
    """Move these keys' last try to now (a backoff then counts from when the failure was
    answered, not from when it began: a slow password check does not eat the wait); commits."""
    with writer_factory() as db:
        db.execute(update(ThrottleCounter)
                   .where(ThrottleCounter.key.in_([k[:160] for k in keys]))
                   .values(last_at=utcnow()))
        db.commit()


def clear(writer_factory, keys: Sequence[str]) -> None:
    """Forget these keys' counts (e.g. a successful login); commits."""
    with writer_factory() as db:
        db.execute(delete(ThrottleCounter).where(ThrottleCounter.key.in_([k[:160] for k in keys])))
        db.commit()


def ticket_limits(unit_id: str | None, client: str, ticket: str | None, hub) -> list[Limit]:
    """The limits of one ticket look-up (hub: the hub settings).

    A kiosk's residents share its token: counting wrong look-ups per kiosk alone would let
    one of them lock Cek Laporan for everyone there. So a kiosk is limited per ticket
    (ticket_fail_limit) with a much larger cap for the whole kiosk (ticket_unit_fail_limit);
    a caller without a token is limited per address. Every ticket also has
    ticket_fail_limit for all callers together, which bounds guessing one ticket's PIN.
    """
    window = hub.ticket_fail_window_s
    limit = hub.ticket_fail_limit
    ticket_part = ticket or "malformed"
    if unit_id is not None:
        limits = [Limit(f"ticket-unit:{unit_id}", hub.ticket_unit_fail_limit, window),
                  Limit(f"ticket-unit:{unit_id}:{ticket_part}", limit, window)]
    else:
        limits = [Limit(f"ticket-ip:{client}", limit, window)]
    if ticket:
        limits.append(Limit(f"ticket-no:{ticket}", limit, window))
    return limits
