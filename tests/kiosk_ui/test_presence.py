"""The kiosk says when a resident is at the screen, so the unit's updater never restarts it
under a half-typed report (issue "In the field", updates wait while a resident is served)."""

from __future__ import annotations

import time

import pytest
import requests

from firmware.updater import busy_reasons
from kiosk_ui.presence import Presence, ttl_for
from posko.kiosk_status import outbox_figures
from tests.kiosk_ui.conftest import make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_screen_counts_until_its_idle_reset_would_have_brought_it_home() -> None:
    clock = Clock()
    presence = Presence(ttl_for(90, 20), clock)
    assert presence.state() == {"busy": False, "screen": None, "reason": None}
    assert presence.seen("lapor")
    assert presence.state()["busy"] and presence.state()["screen"] == "lapor"
    assert "report form" in presence.state()["reason"]
    clock.now += 90 + 20 + 10  # the page's own reset has not happened yet (it may be counting down)
    assert presence.state()["busy"]
    clock.now += 10  # past the reset and the margin: a page that died does not hold updates
    assert not presence.state()["busy"]


def test_beranda_frees_the_kiosk_and_unknown_screens_are_refused() -> None:
    clock = Clock()
    presence = Presence(60, clock)
    presence.seen("darurat")
    assert presence.state()["screen"] == "darurat"
    assert presence.seen("home")
    assert not presence.state()["busy"]
    assert not presence.seen("../admin")
    assert not presence.state()["busy"]


def test_the_updater_gives_the_kiosk_s_reason() -> None:
    assert busy_reasons(None, False, {"busy": True, "reason": "a report form is open (Lapor)"}) \
        == ["a report form is open (Lapor)"]
    assert busy_reasons(None, False, {"busy": False, "reason": None}) == []


def test_the_kiosk_api_reports_the_open_screen_to_the_unit(serve_kiosk, tmp_path) -> None:
    kiosk = serve_kiosk()
    settings = make_settings(tmp_path / "unit", POSKO_KIOSK_BIND="127.0.0.1",
                             POSKO_KIOSK_PORT=str(kiosk.server.server_port))
    figures = outbox_figures(settings)
    assert figures is not None and figures["busy"] is False
    assert requests.get(kiosk.url + "/lapor", timeout=5).status_code == 200  # a resident opened Lapor
    figures = outbox_figures(settings)
    assert figures["busy"] is True and figures["screen"] == "lapor"
    assert busy_reasons(None, False, figures) == ["a report form is open (Lapor)"]
    answer = requests.post(kiosk.url + "/api/presence", json={"screen": "home"}, timeout=5)
    assert answer.status_code == 200 and answer.json()["busy"] is False
    assert outbox_figures(settings)["busy"] is False


@pytest.mark.parametrize("body", [{"screen": "admin"}, {"screen": 3}, {}, ["lapor"]])
def test_a_malformed_presence_gets_422_naming_the_field(serve_kiosk, body) -> None:
    kiosk = serve_kiosk()
    answer = requests.post(kiosk.url + "/api/presence", json=body, timeout=5)
    assert answer.status_code == 422
    assert answer.json()["error"] == "screen"


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_the_page_keeps_the_kiosk_busy_while_a_report_is_typed_and_frees_it_at_the_reset(
        serve_kiosk, new_page) -> None:
    kiosk = serve_kiosk(env={"POSKO_KIOSK_IDLE_RESET_S": "8", "POSKO_KIOSK_IDLE_WARN_S": "3"})
    presence = kiosk.kiosk.presence
    page = new_page(800, 480)
    page.goto(kiosk.url + "/lapor")
    page.click('[data-test="cat-kekerasan"]')
    presence.seen("home")  # as if the server had forgotten: the page's touches must say it again
    page.wait_for_timeout(5500)  # the next touch may be rate-limited for 5 s
    page.click('[data-test="description"]')
    deadline = time.monotonic() + 5
    while not presence.state()["busy"]:
        assert time.monotonic() < deadline, "the page's touch did not report the open form"
        time.sleep(0.05)
    assert presence.state()["screen"] == "lapor"
    page.wait_for_url(kiosk.url + "/", timeout=30000)  # the idle reset brings it home
    deadline = time.monotonic() + 5
    while presence.state()["busy"]:
        assert time.monotonic() < deadline, "Beranda did not free the kiosk"
        time.sleep(0.05)
