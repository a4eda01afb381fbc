"""Naive-UTC times as officers read them: in the hub's display time zone (WIB by default)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(value: dt.datetime | None, tz_name: str, fmt: str = "%d-%m-%Y %H:%M") -> str:
    if value is None:
        return "–"
    return value.replace(tzinfo=dt.UTC).astimezone(_zone(tz_name)).strftime(fmt)


def local_iso(value: dt.datetime | None, tz_name: str) -> str:
    """Naive UTC -> ISO 8601 in the display zone with its offset ("2026-12-24T21:10:00+07:00")."""
    if value is None:
        return ""
    return value.replace(tzinfo=dt.UTC, microsecond=0).astimezone(_zone(tz_name)).isoformat()


def zone_label(tz_name: str, when: dt.datetime | None = None) -> str:
    """The zone's short name officers know (WIB, WITA, WIT), or its offset ("UTC+07")
    when the zone database has only numbers for it; at `when` (naive UTC; default now)."""
    at = (when or dt.datetime.now(dt.UTC).replace(tzinfo=None)).replace(tzinfo=dt.UTC)
    local_at = at.astimezone(_zone(tz_name))
    name = local_at.tzname() or ""
    if name and name[0] not in "+-":
        return name
    offset = local_at.utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}" + (f":{rest:02d}" if rest else "")
