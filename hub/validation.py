"""Check a report body from a kiosk: pure functions, no I/O.

`check_report(body, now)` returns the cleaned report or raises `Invalid` whose `fields`
maps each bad field (dotted path, e.g. "location.lat") to what is wrong with it, so the
API can answer 422 naming every one at once. The rules themselves (categories, limits,
the text rule, phone numbers, time plausibility, the digest) are the shared contract in
`posko.reports`, which the kiosk's form applies before it shows a ticket.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from posko import reports as contract
from posko.reports import (
    CATEGORIES,
    DESCRIPTION_MAX,
    LOCATION_FIELDS,
    LOCATION_TEXT_MAX,
    NAME_MAX,
    PHOTOS_MAX,
    REPORTER_FIELDS,
    TOP_FIELDS,
    is_sha256,
)
from posko.tickets import is_valid_pin, is_valid_ticket, normalise_phone


class Invalid(ValueError):
    """A request body with one or more bad fields."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class CleanReport:
    """A report that passed every check; times as naive UTC."""

    id: str
    category: str
    description: str
    occurred_at: dt.datetime
    location_text: str
    lat: float | None
    lon: float | None
    reporter_name: str
    reporter_phone: str  # normalised +62…, or ""
    photos: list[str] = field(default_factory=list)
    ticket: str = ""
    pin: str = ""
    # occurred_at is implausible (over a day ahead of the hub's clock, or before 2000): kept
    # as the kiosk sent it and marked, never refused (a Pi has no real-time clock).
    time_suspect: bool = False


def body_hash(body: Any) -> str:
    """SHA-256 of the body's canonical JSON (`posko.reports.digest`): the receipt's digest."""
    return contract.digest(body)


def _text(errors: dict[str, str], name: str, value: Any, *, required: bool, max_len: int,
          multiline: bool = False) -> str:
    text, problem = contract.check_text(value, max_len=max_len, required=required, multiline=multiline)
    if problem:
        errors[name] = problem
    return text


def _coordinate(errors: dict[str, str], name: str, value: Any, limit: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors[name] = "must be a number"
        return None
    number = float(value)
    if not math.isfinite(number) or not -limit <= number <= limit:
        errors[name] = f"must be between -{limit:g} and {limit:g}"
        return None
    return number


def check_report(body: Any, now: dt.datetime | None = None) -> CleanReport:
    """Validate a POST /api/v1/reports body. Raises Invalid naming every bad field."""
    if not isinstance(body, dict):
        raise Invalid({"body": "must be a JSON object"})
    now = now or dt.datetime.now(dt.UTC)
    errors: dict[str, str] = {}
    time_suspect = False
    for extra in sorted(set(body) - TOP_FIELDS):
        errors[str(extra)[:64]] = "is not a known field"

    report_id = ""
    raw_id = body.get("id")
    if raw_id is None:
        errors["id"] = "is required"
    elif not isinstance(raw_id, str):
        errors["id"] = "must be a UUID string"
    else:
        try:
            report_id = str(uuid.UUID(raw_id))
        except ValueError:
            errors["id"] = "must be a UUID"

    category = body.get("category")
    if category is None:
        errors["category"] = "is required"
    elif category not in CATEGORIES:
        errors["category"] = "must be one of " + ", ".join(CATEGORIES)

    description = _text(errors, "description", body.get("description"), required=True,
                        max_len=DESCRIPTION_MAX, multiline=True)

    occurred = None
    raw_time = body.get("occurred_at")
    if raw_time is None:
        errors["occurred_at"] = "is required"
    elif not isinstance(raw_time, str):
        errors["occurred_at"] = "must be an ISO 8601 string with an offset"
    else:
        try:
            parsed = dt.datetime.fromisoformat(raw_time)
        except ValueError:
            parsed = None
            errors["occurred_at"] = "must be an ISO 8601 time with an offset, e.g. 2026-12-24T21:10:00+07:00"
        if parsed is not None:
            if parsed.tzinfo is None or parsed.utcoffset() is None:
                errors["occurred_at"] = "must include a UTC offset, e.g. +07:00"
            else:
                try:
                    occurred = parsed.astimezone(dt.UTC)
                except (OverflowError, ValueError):
                    errors["occurred_at"] = "is out of range"
                if occurred is not None:
                    time_suspect = not contract.time_plausible(occurred, now)

    location_text, lat, lon = "", None, None
    location = body.get("location")
    if location is None:
        errors["location"] = "is required"
    elif not isinstance(location, dict):
        errors["location"] = "must be an object with text and optional lat/lon"
    else:
        for extra in sorted(set(location) - LOCATION_FIELDS):
            errors[f"location.{str(extra)[:64]}"] = "is not a known field"
        location_text = _text(errors, "location.text", location.get("text"), required=True,
                              max_len=LOCATION_TEXT_MAX)
        lat = _coordinate(errors, "location.lat", location.get("lat"), 90)
        lon = _coordinate(errors, "location.lon", location.get("lon"), 180)
        if (location.get("lat") is None) != (location.get("lon") is None):
            errors.setdefault("location.lat" if location.get("lat") is None else "location.lon",
                              "lat and lon must be given together")

    name, phone = "", ""
    reporter = body.get("reporter")
    if reporter is not None:
        if not isinstance(reporter, dict):
            errors["reporter"] = "must be an object with optional name and phone"
        else:
            for extra in sorted(set(reporter) - REPORTER_FIELDS):
                errors[f"reporter.{str(extra)[:64]}"] = "is not a known field"
            name = _text(errors, "reporter.name", reporter.get("name"), required=False,
                         max_len=NAME_MAX)
            raw_phone = reporter.get("phone")
            if raw_phone is not None and raw_phone != "":
                if not isinstance(raw_phone, str):
                    errors["reporter.phone"] = "must be a string"
                else:
                    try:
                        phone = normalise_phone(raw_phone)
                    except ValueError as exc:
                        errors["reporter.phone"] = str(exc)

    photos: list[str] = []
    raw_photos = body.get("photos", [])
    if raw_photos is None:
        raw_photos = []
    if not isinstance(raw_photos, list):
        errors["photos"] = "must be a list of SHA-256 hex strings"
    elif len(raw_photos) > PHOTOS_MAX:
        errors["photos"] = f"must hold at most {PHOTOS_MAX} photos"
    else:
        for i, item in enumerate(raw_photos):
            if not is_sha256(item):
                errors[f"photos[{i}]"] = "must be 64 lower-case hex characters (SHA-256)"
            elif item not in photos:
                photos.append(item)

    ticket = body.get("ticket")
    if ticket is None:
        errors["ticket"] = "is required"
    elif not is_valid_ticket(ticket):
        errors["ticket"] = "must be 8 characters of 23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    pin = body.get("pin")
    if pin is None:
        errors["pin"] = "is required"
    elif not is_valid_pin(pin):
        errors["pin"] = "must be 4 digits"

    if errors:
        raise Invalid(errors)
    return CleanReport(
        id=report_id, category=category, description=description,
        occurred_at=occurred.replace(tzinfo=None), location_text=location_text, lat=lat, lon=lon,
        reporter_name=name, reporter_phone=phone, photos=photos, ticket=ticket, pin=pin,
        time_suspect=time_suspect,
    )
