"""The kiosk -> hub report contract: the one place its rules live (pure, no I/O).

The kiosk's Lapor form (`kiosk_ui.reportform`), the hub's intake check (`hub.validation`)
and the OpenAPI document (`hub/data/openapi.yaml`, checked against this module by
`tests/posko/test_reports_contract.py`) all follow these rules, so a report whose ticket
the kiosk shows is a report the hub accepts.

* categories, field lengths (characters, after the text rule below), photo count;
* the text rule: `\\r\\n` and `\\r` become `\\n`, surrounding white space is dropped, and any
  other control character (NUL, ESC, DEL, C1 controls; a newline in a one-line field) is an
  error — refused at the kiosk before a ticket is shown, and by the hub the same way;
* phone numbers: `posko.tickets.normalise_phone` (+62…);
* time plausibility: an `occurred_at` more than a day ahead of the receiver's clock, or
  before 2000, is *implausible*, not invalid: a Pi has no real-time clock, so the hub keeps
  such a report, keeps the kiosk's value, marks it and orders by its own receive time;
* the digest: SHA-256 of the body's canonical JSON, what the hub names in its receipt and
  what the kiosk compares before it marks a report synced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from typing import Any

from posko.tickets import ALPHABET, PIN_LENGTH, TICKET_LENGTH, normalise_phone

CATEGORIES = ("kehilangan", "pencurian", "kecelakaan", "bencana", "kekerasan", "gangguan", "lainnya")
DESCRIPTION_MAX = 4000  # characters
LOCATION_TEXT_MAX = 500  # characters
NAME_MAX = 200  # characters
PHOTOS_MAX = 10
FUTURE_TOLERANCE = dt.timedelta(days=1)  # an occurred_at later than this ahead is implausible
EARLIEST_YEAR = 2000  # an occurred_at before this year is implausible (a dead RTC battery)

TOP_FIELDS = frozenset({"id", "category", "description", "occurred_at", "location", "reporter",
                        "photos", "ticket", "pin"})
LOCATION_FIELDS = frozenset({"text", "lat", "lon"})
REPORTER_FIELDS = frozenset({"name", "phone"})

SHA256_PATTERN = "^[0-9a-f]{64}$"
TICKET_PATTERN = f"^[{ALPHABET}]{{{TICKET_LENGTH}}}$"
PIN_PATTERN = f"^[0-9]{{{PIN_LENGTH}}}$"
# fullmatch: "$" alone would also accept a trailing newline.
_SHA256 = re.compile(r"[0-9a-f]{64}")

__all__ = ["CATEGORIES", "DESCRIPTION_MAX", "LOCATION_TEXT_MAX", "NAME_MAX", "PHOTOS_MAX",
           "canonical_json", "check_text", "digest", "is_sha256", "normalise_phone",
           "time_plausible"]


def check_text(value: Any, *, max_len: int, required: bool, multiline: bool = False) -> tuple[str, str | None]:
    """Apply the text rule: (cleaned text, None) or ("", what is wrong).

    `max_len` counts characters of the cleaned text. `multiline` allows newlines and tabs
    (the description); one-line fields allow neither. The messages are the hub's 422 words.
    """
    if value is None:
        return "", ("is required" if required else None)
    if not isinstance(value, str):
        return "", "must be a string"
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    allowed = "\n\t" if multiline else ""
    for ch in text:
        if ch not in allowed and unicodedata.category(ch) in ("Cc", "Cs"):
            name = "NUL" if ch == "\x00" else f"U+{ord(ch):04X}"
            return "", f"must not contain control characters ({name})"
    if required and not text:
        return "", "must not be empty"
    if len(text) > max_len:
        return "", f"must be at most {max_len} characters"
    return text, None


def time_plausible(occurred: dt.datetime, now: dt.datetime) -> bool:
    """True when an aware `occurred` is at most a day after aware `now` and not before 2000."""
    if occurred.tzinfo is None or now.tzinfo is None:
        raise ValueError("both times must be timezone-aware")
    return occurred.year >= EARLIEST_YEAR and occurred <= now + FUTURE_TOLERANCE


def is_sha256(value: object) -> bool:
    """True for 64 lower-case hex digits (a photo's name)."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def canonical_json(body: Any) -> str:
    """The body's canonical JSON text: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(body: Any) -> str:
    """SHA-256 (hex) of canonical_json(body): the same report always has the same digest."""
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
