"""The one report contract (`posko.reports`): its rules, the OpenAPI document checked
against it, and the kiosk form and the hub's check agreeing on every input."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path

import pytest
import yaml

from hub.validation import Invalid, check_report
from kiosk_ui.reportform import build_report
from posko import reports
from posko.tickets import new_pin, new_ticket

ROOT = Path(__file__).resolve().parents[2]
WIB = dt.timezone(dt.timedelta(hours=7))
NOW = dt.datetime(2026, 12, 24, 21, 0, tzinfo=WIB)


def openapi_report() -> dict:
    doc = yaml.safe_load((ROOT / "hub" / "data" / "openapi.yaml").read_text(encoding="utf-8"))
    return doc["components"]["schemas"]["Report"]


def test_the_openapi_report_schema_says_what_the_contract_says() -> None:
    schema = openapi_report()
    props = schema["properties"]
    assert set(props) == set(reports.TOP_FIELDS)
    assert tuple(props["category"]["enum"]) == reports.CATEGORIES
    assert props["description"]["maxLength"] == reports.DESCRIPTION_MAX
    assert set(props["location"]["properties"]) == set(reports.LOCATION_FIELDS)
    assert props["location"]["properties"]["text"]["maxLength"] == reports.LOCATION_TEXT_MAX
    assert set(props["reporter"]["properties"]) == set(reports.REPORTER_FIELDS)
    assert props["reporter"]["properties"]["name"]["maxLength"] == reports.NAME_MAX
    assert props["photos"]["maxItems"] == reports.PHOTOS_MAX
    assert props["photos"]["items"]["pattern"] == reports.SHA256_PATTERN
    assert props["ticket"]["pattern"] == reports.TICKET_PATTERN
    assert props["pin"]["pattern"] == reports.PIN_PATTERN
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("value, multiline, expected", [
    ("  dompet hilang \r\n di pasar ", True, ("dompet hilang \n di pasar", None)),
    ("baris\tdua", True, ("baris\tdua", None)),
    ("Jl. Merdeka\n", False, ("Jl. Merdeka", None)),  # surrounding white space only
])
def test_text_rule_normalises_line_ends_and_white_space(value, multiline, expected) -> None:
    assert reports.check_text(value, max_len=100, required=True, multiline=multiline) == expected


@pytest.mark.parametrize("value, multiline", [
    ("motor\x00hilang", True), ("esc \x1b[31m", True), ("del\x7f", True), ("c1 \x85 tengah", True),
    ("satu\ndua", False), ("tab\there", False),
])
def test_text_rule_refuses_control_characters(value, multiline) -> None:
    text, problem = reports.check_text(value, max_len=100, required=True, multiline=multiline)
    assert text == "" and "control characters" in problem


def test_time_plausibility() -> None:
    assert reports.time_plausible(NOW, NOW)
    assert reports.time_plausible(NOW + dt.timedelta(hours=23), NOW)
    assert not reports.time_plausible(NOW + dt.timedelta(hours=25), NOW)
    assert not reports.time_plausible(dt.datetime(1996, 1, 1, tzinfo=WIB), NOW)
    with pytest.raises(ValueError):
        reports.time_plausible(NOW.replace(tzinfo=None), NOW)


def test_digest_is_the_canonical_json_hash_whatever_the_key_order() -> None:
    a = {"b": 1, "a": {"y": "é", "x": [1, 2]}}
    b = {"a": {"x": [1, 2], "y": "é"}, "b": 1}
    assert reports.digest(a) == reports.digest(b)
    assert reports.canonical_json(a) == '{"a":{"x":[1,2],"y":"é"},"b":1}'


FORMS = [
    {"description": "motor\x00hilang"},
    {"description": "ada \x1b escape"},
    {"description": "baris satu\r\nbaris dua"},
    {"description": "x" * reports.DESCRIPTION_MAX},
    {"description": "x" * (reports.DESCRIPTION_MAX + 1)},
    {"description": "  "},
    {"where": "other", "location": "Jl. Pemuda\x00 5"},
    {"where": "other", "location": "y" * reports.LOCATION_TEXT_MAX},
    {"where": "other", "location": "y" * (reports.LOCATION_TEXT_MAX + 1)},
    {"name": "Sari\x07", "consent": "1"},
    {"name": "n" * reports.NAME_MAX, "consent": "1"},
    {"name": "n" * (reports.NAME_MAX + 1), "consent": "1"},
    {"phone": "0812-3456-789", "consent": "1"},
    {"phone": "0812\n3456789", "consent": "1"},
]


@pytest.mark.parametrize("extra", FORMS)
def test_whatever_the_kiosk_form_accepts_the_hub_accepts(extra) -> None:
    """The bug this contract ends: a NUL passed the kiosk, got a ticket, and the hub refused
    the report for ever. Now the form refuses exactly what the hub would refuse."""
    form = {"category": "pencurian", "description": "dompet hilang", "where": "here"}
    form.update(extra)
    result = build_report(form, "Posko Alun-alun", NOW)
    if result.errors:
        return  # refused before any ticket: fine, the resident is told which field
    body = dict(result.report, id=str(uuid.uuid4()), ticket=new_ticket(), pin=new_pin(), photos=[])
    check_report(body, NOW.astimezone(dt.UTC))  # raises Invalid if the hub would refuse it


@pytest.mark.parametrize("extra, field", [
    ({"description": "motor\x00hilang"}, "description"),
    ({"where": "other", "location": "Jl.\x00"}, "location"),
    ({"name": "Sari\x07", "consent": "1"}, "name"),
])
def test_the_form_names_the_field_with_a_control_character(extra, field) -> None:
    form = {"category": "pencurian", "description": "dompet hilang", "where": "here", **extra}
    assert field in build_report(form, "Posko", NOW).errors


def test_the_hub_refuses_what_the_form_refuses_with_the_same_rule() -> None:
    body = {"id": str(uuid.uuid4()), "category": "pencurian", "description": "a\x00b",
            "occurred_at": NOW.isoformat(), "location": {"text": "Posko\x1b"},
            "reporter": {"name": "x\x7f"}, "ticket": new_ticket(), "pin": new_pin()}
    with pytest.raises(Invalid) as caught:
        check_report(body, NOW)
    for field in ("description", "location.text", "reporter.name"):
        assert "control characters" in caught.value.fields[field]


def test_no_module_keeps_its_own_copy_of_the_categories() -> None:
    """One contract: the category list is written once, in posko/reports.py."""
    pattern = re.compile(r"\"kehilangan\",\s*\"pencurian\"")
    holders = [p.relative_to(ROOT).as_posix() for folder in ("posko", "hub", "kiosk_ui")
               for p in (ROOT / folder).rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert holders == ["posko/reports.py"]


def test_a_configured_posko_name_the_hub_would_refuse_is_cleaned_not_sent() -> None:
    form = {"category": "pencurian", "description": "dompet hilang", "where": "here"}
    for name in ("Posko\x00 Alun-alun", "P" * (reports.LOCATION_TEXT_MAX + 50)):
        result = build_report(form, name, NOW)
        body = dict(result.report, id=str(uuid.uuid4()), ticket=new_ticket(), pin=new_pin(), photos=[])
        check_report(body, NOW)
