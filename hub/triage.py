"""What the queue shows beside each report: its age, the overdue mark and likely duplicates.
Pure: values in, values out (times are naive UTC datetimes, as stored).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Reports not yet acted upon: the overdue clock runs for these only.
WAITING_STATES = ("baru", "diverifikasi")
DUPLICATE_WINDOW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class OverdueLimits:
    """Minutes a report of each severity may wait (new or only verified) before it is overdue."""

    high_min: int
    medium_min: int
    normal_min: int

    def minutes(self, severity: str) -> int:
        return {"high": self.high_min, "medium": self.medium_min}.get(severity, self.normal_min)


def age_s(received_at: dt.datetime, now: dt.datetime) -> float:
    """Seconds since the report arrived (never negative: a clock step back shows 0)."""
    return max(0.0, (now - received_at).total_seconds())


def overdue_at(received_at: dt.datetime, severity: str, limits: OverdueLimits) -> dt.datetime:
    """When a waiting report of `severity` becomes overdue."""
    return received_at + dt.timedelta(minutes=limits.minutes(severity))


def is_overdue(state: str, severity: str, received_at: dt.datetime, now: dt.datetime,
               limits: OverdueLimits) -> bool:
    """True when the report is still waiting (new or verified) past its severity's minutes."""
    return state in WAITING_STATES and now >= overdue_at(received_at, severity, limits)


_NOT_WORD = re.compile(r"[^0-9a-z]+")


def place_key(text: str) -> str:
    """A place as it compares for duplicates: lower case, punctuation and spacing folded
    ("Parkiran  Pasar," and "parkiran pasar" are one place)."""
    return _NOT_WORD.sub(" ", text.lower()).strip()


@dataclass(frozen=True)
class Seen:
    """The few fields duplicate detection reads."""

    id: str
    category: str
    location_text: str
    occurred_at: dt.datetime


def duplicates(reports: Iterable[Seen], others: Iterable[Seen] | None = None) -> dict[str, list[str]]:
    """For each report, the ids of likely duplicates: same category, same place and
    happened within an hour of each other. `others` (default: the reports themselves) are
    the candidates, e.g. the reports around a queue page; a report is never its own
    duplicate. Returns only reports with at least one duplicate."""
    reports = list(reports)
    pool = list(others) if others is not None else reports
    by_key: dict[tuple[str, str], list[Seen]] = {}
    for item in pool:
        by_key.setdefault((item.category, place_key(item.location_text)), []).append(item)
    out: dict[str, list[str]] = {}
    for report in reports:
        near = [o.id for o in by_key.get((report.category, place_key(report.location_text)), [])
                if o.id != report.id and abs(o.occurred_at - report.occurred_at) <= DUPLICATE_WINDOW]
        if near:
            out[report.id] = near
    return out
