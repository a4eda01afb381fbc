"""Check what the Lapor screens send and build the hub's report fields (pure, no I/O).

The result follows the hub's intake contract (`posko.reports`: categories, lengths, the
control-character rule, phone numbers), applied here the same way the hub applies it, so
no report gets a ticket that the hub would refuse. id, ticket, pin and photos are added by
the outbox when the report is committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from posko.reports import CATEGORIES, DESCRIPTION_MAX, LOCATION_TEXT_MAX, NAME_MAX, check_text
from posko.tickets import normalise_phone

MAX_OFFSET_MIN = 7 * 24 * 60  # the screen offers up to "yesterday"; a week is the hard limit


@dataclass
class FormResult:
    report: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)  # field names, in screen order
    phone: str = ""  # normalised, for the block-list check


def _text(form: Mapping[str, Any], key: str) -> str:
    value = form.get(key, "")
    return value.strip() if isinstance(value, str) else ""


def _field(errors: list[str], form: Mapping[str, Any], key: str, error_name: str, *,
           max_len: int, required: bool, multiline: bool = False) -> str:
    """One free-text field under the contract's text rule; its name joins `errors` if bad."""
    text, problem = check_text(form.get(key, ""), max_len=max_len, required=required,
                               multiline=multiline)
    if problem:
        errors.append(error_name)
    return text


def build_report(form: Mapping[str, Any], posko_name: str, now: dt.datetime) -> FormResult:
    """Validate the Lapor form; `now` must be timezone-aware (the kiosk's local time)."""
    errors: list[str] = []
    category = _text(form, "category")
    if category not in CATEGORIES:
        errors.append("category")
    description = _field(errors, form, "description", "description", max_len=DESCRIPTION_MAX,
                         required=True, multiline=True)
    where = _text(form, "where") or "here"
    if where == "here":
        # The configured name is not the resident's to fix: cleaned to what the hub accepts.
        location = check_text(posko_name[:LOCATION_TEXT_MAX], max_len=LOCATION_TEXT_MAX,
                              required=True)[0] or "Posko"
    elif where != "other":
        errors.append("location")
        location = ""
    else:
        location = _field(errors, form, "location", "location", max_len=LOCATION_TEXT_MAX,
                          required=True)
    try:
        offset = int(_text(form, "when_offset_min") or "0")
        if not 0 <= offset <= MAX_OFFSET_MIN:
            raise ValueError
    except ValueError:
        errors.append("occurred")
        offset = 0
    name = _field(errors, form, "name", "name", max_len=NAME_MAX, required=False)
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
