"""Check what the Lapor screens send and build the hub's report fields (pure, no I/O).

The result follows the hub's intake contract (category, description, occurred_at with an
offset, location.text, optional reporter); id, ticket, pin and photos are added by the
outbox when the report is committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kiosk_ui.ticketing import normalise_phone

CATEGORIES = ("kehilangan", "pencurian", "kecelakaan", "bencana", "kekerasan", "gangguan", "lainnya")
MAX_DESCRIPTION = 4000
MAX_LOCATION = 300
MAX_NAME = 100
MAX_OFFSET_MIN = 7 * 24 * 60  # the screen offers up to "yesterday"; a week is the hard limit


@dataclass
class FormResult:
    report: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)  # field names, in screen order
    phone: str = ""  # normalised, for the block-list check


def _text(form: Mapping[str, Any], key: str) -> str:
    value = form.get(key, "")
    return value.strip() if isinstance(value, str) else ""


def build_report(form: Mapping[str, Any], posko_name: str, now: dt.datetime) -> FormResult:
    """Validate the Lapor form; `now` must be timezone-aware (the kiosk's local time)."""
    errors: list[str] = []
    category = _text(form, "category")
    if category not in CATEGORIES:
        errors.append("category")
    description = _text(form, "description")
    if not 1 <= len(description) <= MAX_DESCRIPTION:
        errors.append("description")
    where = _text(form, "where") or "here"
    if where == "here":
        location = posko_name
    else:
        location = _text(form, "location")
        if where != "other" or not 1 <= len(location) <= MAX_LOCATION:
            errors.append("location")
    try:
        offset = int(_text(form, "when_offset_min") or "0")
        if not 0 <= offset <= MAX_OFFSET_MIN:
            raise ValueError
    except ValueError:
        errors.append("occurred")
        offset = 0
    name = _text(form, "name")
    if len(name) > MAX_NAME:
        errors.append("name")
    phone_text = _text(form, "phone")
    phone = ""
    if phone_text:
        try:
            phone = normalise_phone(phone_text)
        except ValueError:
            errors.append("phone")
    consent = _text(form, "consent") in ("1", "on", "yes", "true")
    if (name or phone_text) and not consent:
        errors.append("consent")
    if errors:
        return FormResult(None, errors)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    occurred = (now - dt.timedelta(minutes=offset)).replace(microsecond=0)
    report: dict[str, Any] = {
        "category": category,
        "description": description,
        "occurred_at": occurred.isoformat(),
        "location": {"text": location},
    }
    if name or phone:
        reporter: dict[str, str] = {}
        if name:
            reporter["name"] = name
        if phone:
            reporter["phone"] = phone
        report["reporter"] = reporter
    return FormResult(report, [], phone)
