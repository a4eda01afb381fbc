"""Times as residents read them: one display zone (the kiosk setting `display_tz`), labelled.

Indonesia's three zones have their own names (WIB, WITA, WIT) that residents know; other
zones fall back to the abbreviation the tz database gives (or the UTC offset). Pure
functions, no I/O beyond reading the system's tz database.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

INDONESIAN_ZONES = {
    "Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT",
}


@cache
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of `name`; raises ValueError naming the setting when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"[kiosk] display_tz: unknown time zone {name!r} (e.g. Asia/Jakarta)") from None


def zone_label(name: str, when: dt.datetime | None = None) -> str:
    """"WIB" for Asia/Jakarta, else the zone's abbreviation at `when` (now by default)."""
    if name in INDONESIAN_ZONES:
        return INDONESIAN_ZONES[name]
    moment = (when or dt.datetime.now(dt.UTC)).astimezone(zone(name))
    abbr = moment.tzname() or ""
    if abbr and abbr[0] not in "+-":
        return abbr
    offset = moment.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def show(moment: dt.datetime | float, tz_name: str, fmt: str = "%d-%m-%Y %H:%M") -> str:
    """`moment` (aware datetime or Unix seconds) in the display zone, with its label."""
    if isinstance(moment, int | float):
        moment = dt.datetime.fromtimestamp(moment, dt.UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # the hub's API speaks UTC
    local = moment.astimezone(zone(tz_name))
    return f"{local.strftime(fmt)} {zone_label(tz_name, moment)}"
