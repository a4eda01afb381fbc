"""Pure parts behind the screens: display zone, Host allow-list, numbers, answer texts."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from kiosk_ui import clock
from kiosk_ui.assistant import sentence_case, strip_lead, strip_suggestions
from kiosk_ui.i18n import Texts
from kiosk_ui.views import allowed_hosts, host_name
from tests.kiosk_ui.conftest import make_settings


def test_times_are_shown_in_one_labelled_zone() -> None:
    noon_utc = dt.datetime(2026, 12, 24, 14, 10)  # naive = UTC, as the hub's API speaks
    assert clock.show(noon_utc, "Asia/Jakarta") == "24-12-2026 21:10 WIB"
    assert clock.show(noon_utc, "Asia/Makassar") == "24-12-2026 22:10 WITA"
    assert clock.show(noon_utc, "Asia/Jayapura") == "24-12-2026 23:10 WIT"
    aware = dt.datetime(2026, 12, 24, 21, 10, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    assert clock.show(aware, "Asia/Jakarta", "%H:%M") == "21:10 WIB"
    assert clock.show(aware.timestamp(), "Asia/Jakarta", "%H:%M") == "21:10 WIB"
    assert clock.zone_label("Europe/Amsterdam", dt.datetime(2026, 12, 24, tzinfo=dt.UTC)) == "CET"
    with pytest.raises(ValueError, match="display_tz"):
        clock.zone("Mars/Olympus")


def test_a_bad_display_zone_stops_the_app_with_the_setting_named(tmp_path) -> None:
    from kiosk_ui.app import create_app

    with pytest.raises(ValueError, match="display_tz"):
        create_app({"SETTINGS": make_settings(tmp_path, POSKO_KIOSK_DISPLAY_TZ="Mars/Olympus"),
                    "START_BRAIN": False})


def test_host_names_the_kiosk_answers_to(tmp_path) -> None:
    assert host_name("127.0.0.1:18081") == "127.0.0.1"
    assert host_name("[::1]:18081") == "::1"
    assert host_name("Evil.Example:80") == "evil.example"
    assert host_name("localhost") == "localhost"
    settings = make_settings(tmp_path, POSKO_KIOSK_BIND="192.168.5.20", POSKO_KIOSK_ALLOWED_HOSTS="kiosk.local, x")
    names = allowed_hosts(settings)
    assert {"127.0.0.1", "localhost", "::1", "192.168.5.20", "kiosk.local", "x"} == names
    wildcard = allowed_hosts(make_settings(tmp_path / "w", POSKO_KIOSK_BIND="0.0.0.0"))
    assert "0.0.0.0" not in wildcard  # "any interface" is not a host name anyone may send


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_big_numbers_are_the_kb_entrys_numbers(lang) -> None:
    """The Darurat screen's numbers (large type) must be ones the KB entry darurat-nomor gives."""
    from assistant.kb import load_kb

    entry = load_kb().get("darurat-nomor")
    answer = entry.answer[lang] if isinstance(entry.answer, dict) else getattr(entry.answer, lang)
    listed = set(re.findall(r"\*\*(\d{3})\*\*", answer))
    shown = [n["number"] for n in Texts(lang).get("darurat.number_list").values()]
    numbers = {p for n in shown for p in re.findall(r"\d{3}", n)}
    assert numbers == {"110", "112", "113", "118", "119"} and numbers <= listed
    assert shown[0] == "110"
    for unconfirmed in ("117", "129", "122", "123"):  # kb-facts marks these UNCONFIRMED
        assert unconfirmed not in " ".join(shown)


def test_answer_texts_for_the_screen() -> None:
    lead = "**Officers are being alerted now.**\nIf anyone is in danger, call **110** now."
    text = lead + "\nFor medical emergencies call **119**."
    assert strip_lead(text, lead) == "For medical emergencies call **119**."
    assert strip_lead("Something else.\nx", lead) == "Something else.\nx"  # not a prefix: unchanged
    fallback = "Maaf, saya belum tahu.\nMungkin maksud Bapak/Ibu:\n- Biaya SKCK\n- Perpanjang SIM"
    assert strip_suggestions(fallback, ["Biaya SKCK", "Perpanjang SIM"]) == "Maaf, saya belum tahu."
    assert sentence_case("fee for renewing a SIM") == "Fee for renewing a SIM"
    assert sentence_case("SKCK") == "SKCK"


def test_the_public_note_follows_the_reports_state(tmp_path) -> None:
    from kiosk_ui.app import create_app
    from kiosk_ui.views import _present

    app = create_app({"SETTINGS": make_settings(tmp_path), "START_BRAIN": False, "START_ALERTS": False})
    with app.test_request_context("/api/cek"):
        app.preprocess_request()
        done = _present({"state": "selesai", "note": "Mohon tunggu kabar berikutnya.", "note_state": "baru",
                         "updated": "2026-12-25T01:00:00Z"})
        assert done["note"] == ""  # written for "baru": not shown as current at "selesai"
        assert "sudah selesai" in done["state_note"] and done["state_label"] == "Selesai"
        assert done["updated"] == "25-12-2026 08:00 WIB"
        current = _present({"state": "selesai", "note": "Motor sudah ditemukan.", "note_state": "selesai"})
        assert current["note"] == "Motor sudah ditemukan."
        for state in ("baru", "diverifikasi", "ditindaklanjuti", "selesai", "ditolak"):
            assert _present({"state": state})["state_note"]
