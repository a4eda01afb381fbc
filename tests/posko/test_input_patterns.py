"""Every pattern that validates input refuses a trailing newline (`$` also matches before a
final "\\n"; `TJTJP9QB\\n` once made a second report with an existing ticket)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("posko", "hub", "kiosk_ui", "gateway", "firmware", "assistant", "models")


def _validators():
    from assistant.kb import ID_PATTERN
    from hub.kb import VERSION
    from hub.validation import is_sha256 as hub_sha
    from kiosk_ui import views
    from models import manifest
    from posko import kb_paths, reports, tickets, topics

    def matches(pattern):
        return lambda value: pattern.match(value) is not None

    def accepts(fn):
        def check(value):
            try:
                fn(value)
            except ValueError:
                return False
            return True
        return check

    return [
        ("ticket", tickets.is_valid_ticket, "TJTJP9QB"),
        ("pin", tickets.is_valid_pin, "4821"),
        ("sha256", reports.is_sha256, "a" * 64),
        ("hub sha256", hub_sha, "b" * 64),
        ("topic id", accepts(lambda v: topics.check_id("unit", v)), "kiosk-1"),
        ("kb version", matches(kb_paths.VERSION_PATTERN), "0123456789ab"),
        ("hub kb version", matches(VERSION), "0123456789ab"),
        ("session id", matches(views._SESSION_RE), "0123456789abcdef"),
        ("kb entry id", matches(ID_PATTERN), "sim-c"),
        ("model name", matches(manifest._NAME), "vosk-id"),
        ("model sha", matches(manifest._SHA), "c" * 64),
    ]


@pytest.mark.parametrize("name, check, good", _validators(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_trailing_newline_is_refused(name, check, good) -> None:
    assert check(good), f"{name}: the good value should pass"
    assert not check(good + "\n"), f"{name} accepts a trailing newline"


def test_what_people_type_is_cleaned_to_the_canonical_form_without_the_newline() -> None:
    from kiosk_ui.ticketing import parse_pin
    from posko.tickets import parse_ticket

    assert parse_ticket(" tjtj-p9qb\n") == "TJTJP9QB"  # spaces and the dash are allowed there
    assert parse_pin("4821\n") == "4821"


def test_hub_refuses_a_ticket_with_a_trailing_newline() -> None:
    import uuid

    from hub.validation import Invalid, check_report
    from posko.tickets import new_ticket

    body = {"id": str(uuid.uuid4()), "category": "lainnya", "description": "x",
            "occurred_at": "2026-12-24T21:10:00+07:00", "location": {"text": "Posko"},
            "ticket": new_ticket() + "\n", "pin": "4821\n"}
    with pytest.raises(Invalid) as caught:
        check_report(body)
    assert {"ticket", "pin"} <= set(caught.value.fields)


def test_no_anchored_pattern_ends_in_a_bare_dollar() -> None:
    """A compiled pattern "^…$" used to validate input must end in \\Z (or be fullmatched
    without anchors); this catches a new one written the old way."""
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "compile"
                        and node.args and isinstance(node.args[0], ast.Constant)
                        and isinstance(node.args[0].value, str)):
                    text = node.args[0].value
                    if text.startswith("^") and text.endswith("$") and not re.search(r"\\\$$", text):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {text}")
    # assistant/unanswered.py's plate pattern tests a word already cut from a question.
    assert [f for f in found if "unanswered.py" not in f] == []
