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
