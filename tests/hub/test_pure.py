"""Pure logic: tickets, phones, report validation, workflow, login backoff, image cleaning."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from hub.auth import wait_seconds
from hub.intake import PhotoRejected, clean_image
from hub.models import User
from hub.validation import Invalid, body_hash, check_report
from hub.workflow import BadTransition, check_transition, next_states
from posko.tickets import (
    ALPHABET,
    format_ticket,
    is_valid_pin,
    is_valid_ticket,
    new_pin,
    new_ticket,
    normalise_phone,
    parse_ticket,
    phone_key,
)
from tests.hub.support import report_body


def test_ticket_alphabet_has_no_lookalikes():
    assert len(ALPHABET) == 31 and not set("01OIL") & set(ALPHABET)
    tickets = {new_ticket() for _ in range(500)}
    assert len(tickets) == 500 and all(is_valid_ticket(t) for t in tickets)
    assert all(is_valid_pin(new_pin()) for _ in range(200))
    assert {len(new_pin()) for _ in range(200)} == {4}


def test_ticket_format_and_parse():
    assert format_ticket("K7QM4TZP") == "K7QM-4TZP"
    assert parse_ticket(" k7qm-4tzp ") == "K7QM4TZP"
    for bad in ("K7QM-4TZ0", "K7QM4TZ", "K7QM4TZPQ", "", "K7QM 4TZI"):
        with pytest.raises(ValueError):
            parse_ticket(bad)
    assert not is_valid_pin("48a1") and not is_valid_pin("12345") and not is_valid_pin("١٢٣٤")


@given(st.text(alphabet=ALPHABET, min_size=8, max_size=8))
def test_parse_inverts_format(ticket):
    assert parse_ticket(format_ticket(ticket).lower()) == ticket


def test_phone_normalisation_and_key():
    same = ["0812-3456-789", "+62 812 3456 789", "62812.3456.789", "(0812) 3456789"]
    assert {normalise_phone(p) for p in same} == {"+628123456789"}
    for bad in ("12345", "+1 555 0100", "0812-34", "08x2345678", "+6208123456789"):
        with pytest.raises(ValueError):
            normalise_phone(bad)
    key_a = phone_key("+628123456789", "k1")
    assert len(key_a) == 64 and key_a != phone_key("+628123456789", "k2")


def test_valid_report_is_cleaned():
    body = report_body(occurred_at="2026-01-02T21:10:00+07:00")
    clean = check_report(body, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    assert clean.occurred_at == dt.datetime(2026, 1, 2, 14, 10)
    assert clean.reporter_phone == "+628123456789"
    assert body_hash(body) == body_hash(dict(reversed(list(body.items()))))


def test_every_bad_field_is_named():
    with pytest.raises(Invalid) as info:
        check_report({"id": "nope", "category": "x", "description": " ", "occurred_at": "kemarin",
                      "location": {"text": "", "lat": "1", "lon": 2}, "reporter": {"phone": 812},
                      "photos": "a", "ticket": "k7qm4tzp", "pin": 4821})
    assert set(info.value.fields) == {"id", "category", "description", "occurred_at", "location.text",
                                      "location.lat", "reporter.phone", "photos", "ticket", "pin"}
    # an implausible time is the kiosk's clock, not the resident's mistake: kept and marked
    assert check_report(report_body(occurred_at="2999-01-01T00:00:00+07:00")).time_suspect is True
    assert check_report(report_body(occurred_at="1996-01-01T08:00:00+07:00")).time_suspect is True
    assert check_report(report_body()).time_suspect is False
    with pytest.raises(Invalid) as info:
        check_report(report_body(description="x" * 4001, location={"text": "a", "lat": float("nan"), "lon": 1}))
    assert set(info.value.fields) == {"description", "location.lat"}


@given(st.dictionaries(st.text(max_size=12), st.one_of(st.none(), st.integers(), st.text(max_size=20),
                                                        st.lists(st.text(max_size=5), max_size=3)),
                       max_size=10))
def test_check_report_never_crashes(data):
    try:
        check_report(data)
    except Invalid as exc:
        assert exc.fields


def test_workflow():
    assert next_states("baru") == ["diverifikasi", "ditolak"]
    assert next_states("selesai") == [] and next_states("ditolak") == []
    check_transition("diverifikasi", "ditindaklanjuti")
    for current, target, reason in [("baru", "selesai", ""), ("baru", "ditolak", " "),
                                    ("selesai", "ditolak", "laporan palsu"), ("baru", "hilang", "")]:
        with pytest.raises(BadTransition):
            check_transition(current, target, reason)


def test_login_backoff_doubles_and_is_capped():
    now = dt.datetime(2026, 12, 24, 21, 0, 0)
    user = User(username="u", password_hash="x", role="operator", failed_logins=2, last_failed_at=now)
    assert wait_seconds(user, 3, 300, now) == 0
    user.failed_logins = 3
    assert wait_seconds(user, 3, 300, now) == 1
    user.failed_logins = 6
    assert wait_seconds(user, 3, 300, now) == 8
    assert wait_seconds(user, 3, 300, now + dt.timedelta(seconds=8)) == 0
    user.failed_logins = 40
    assert wait_seconds(user, 3, 300, now) == 300


def _image_bytes(fmt: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    img = Image.new(mode, (40, 30), 128)
    exif = Image.Exif()
    exif[0x8825] = {1: "S", 2: (6.0, 54.0, 0.0)}
    exif[0x0112] = 6  # rotated: the cleaned image is stored upright
    kwargs = {"exif": exif.tobytes()} if fmt in ("JPEG", "WEBP", "PNG") else {}
    img.save(out, fmt, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("fmt,mime", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_clean_image_strips_metadata(fmt, mime):
    data, got_mime, width, height = clean_image(_image_bytes(fmt), 10_000_000)
    assert got_mime == mime and (width, height) == (30, 40)
    again = Image.open(io.BytesIO(data))
    assert len(again.getexif()) == 0 and "exif" not in again.info


def test_clean_image_rejects_non_images_and_bombs():
    with pytest.raises(PhotoRejected):
        clean_image(b"GIF89a not really", 10_000_000)
    with pytest.raises(PhotoRejected):
        clean_image(_image_bytes("JPEG")[:200], 10_000_000)  # truncated
    with pytest.raises(PhotoRejected):
        clean_image(_image_bytes("PNG"), 100)  # more pixels than allowed
