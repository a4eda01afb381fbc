"""Lapor form checks, photo preparation, texts in both languages, answer markup (no I/O)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image

from kiosk_ui.assistant import render_markup
from kiosk_ui.i18n import Texts, catalogue, flat_keys
from kiosk_ui.photos import BadPhoto, prepare_photo
from kiosk_ui.reportform import build_report

NOW = dt.datetime(2026, 12, 24, 21, 10, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def test_a_full_form_becomes_the_hubs_report_fields() -> None:
    result = build_report({"category": "pencurian", "description": " motor beat hitam ",
                           "where": "other", "location": "parkiran pasar", "when_offset_min": "60",
                           "name": "Sari", "phone": "0812-3456-7890", "consent": "1"}, "Posko A", NOW)
    assert result.errors == []
    assert result.report == {
        "category": "pencurian", "description": "motor beat hitam",
        "occurred_at": "2026-12-24T20:10:00+07:00", "location": {"text": "parkiran pasar"},
        "reporter": {"name": "Sari", "phone": "+6281234567890"}}


def test_defaults_are_this_posko_and_now_without_reporter() -> None:
    result = build_report({"category": "lainnya", "description": "x"}, "Posko Alun-alun", NOW)
    assert result.report["location"] == {"text": "Posko Alun-alun"}
    assert result.report["occurred_at"] == "2026-12-24T21:10:00+07:00"
    assert "reporter" not in result.report


@pytest.mark.parametrize("form, field", [
    ({"category": "bom", "description": "x"}, "category"),
    ({"category": "lainnya", "description": "   "}, "description"),
    ({"category": "lainnya", "description": "x" * 4001}, "description"),
    ({"category": "lainnya", "description": "x", "where": "other", "location": ""}, "location"),
    ({"category": "lainnya", "description": "x", "when_offset_min": "-5"}, "occurred"),
    ({"category": "lainnya", "description": "x", "when_offset_min": "abc"}, "occurred"),
    ({"category": "lainnya", "description": "x", "phone": "12345", "consent": "1"}, "phone"),
    ({"category": "lainnya", "description": "x", "phone": "081234567890"}, "consent"),
    ({"category": "lainnya", "description": "x", "name": "y" * 201, "consent": "1"}, "name"),
    ({"category": "lainnya", "description": "motor\x00hilang"}, "description"),
])
def test_each_bad_field_is_named(form: dict, field: str) -> None:
    result = build_report(form, "Posko", NOW)
    assert result.report is None and field in result.errors


def test_photos_are_scaled_to_the_limit_and_lose_their_metadata() -> None:
    img = Image.new("RGB", (4000, 3000), "navy")
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    raw = io.BytesIO()
    img.save(raw, "JPEG", exif=exif.tobytes())
    photo = prepare_photo(raw.getvalue(), max_px=1600)
    out = Image.open(io.BytesIO(photo.data))
    assert out.format == "JPEG" and max(out.size) == 1600 and out.size == (1600, 1200)
    assert b"SecretCam" not in photo.data
    small = io.BytesIO()
    Image.new("RGB", (640, 480)).save(small, "PNG")
    assert Image.open(io.BytesIO(prepare_photo(small.getvalue()).data)).size == (640, 480)


@pytest.mark.parametrize("data", [b"", b"not an image", b"GIF89a" + b"\0" * 100])
def test_non_images_are_refused(data: bytes) -> None:
    with pytest.raises(BadPhoto):
        prepare_photo(data)


def test_both_languages_have_the_same_texts_and_no_empty_one() -> None:
    ids, ens = flat_keys(catalogue("id")), flat_keys(catalogue("en"))
    assert ids == ens
    for lang in ("id", "en"):
        t = Texts(lang)
        for key in ids:
            assert isinstance(t.get(key), str) and t.get(key).strip(), (lang, key)


def test_resident_texts_are_polite_and_never_quote_unconfirmed_numbers() -> None:
    t = Texts("id")
    assert "Bapak/Ibu" in t("home.welcome")
    assert "110" in t("lapor.disk_full") and "petugas" in t("lapor.disk_full")
    for lang in ("id", "en"):
        text = " ".join(str(Texts(lang).get(k)) for k in flat_keys(catalogue(lang)))
        assert "117" not in text and "129" not in text


def test_answer_markup_is_escaped_and_structured() -> None:
    html = str(render_markup("Biaya **Rp30.000** <script>x</script>\n- KTP\n- KK\n\n1. Daftar\n2. Bayar"))
    assert "<strong>Rp30.000</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.count("<li>") == 4 and "<ul>" in html and "<ol>" in html


def test_fanout_replays_recent_events_to_a_late_screen_and_drops_for_slow_ones() -> None:
    from kiosk_ui.bus import Fanout

    fan = Fanout(maxsize=2, replay=5, replay_s=60)
    fan.publish("ack", {"alert_id": "a1"})
    late = fan.subscribe()
    assert late.get_nowait() == ("ack", {"alert_id": "a1"})
    for i in range(5):
        fan.publish("assistant", {"n": i})  # a full queue drops, the publisher never blocks
    assert late.qsize() == 2 and fan.count() == 1
    fan.unsubscribe(late)
    assert fan.count() == 0
