"""A live stream ends when the session that opened it ends (issue "Honest screens", security):
an officer who logs out in another tab, whose password is reset or whose account is disabled
stops receiving reports, alerts and talk-group floors at once, not minutes later."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.hub.support import Officer

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

STREAMS = ["/live/stream", "/grup-bicara/stream"]


def _read_events(http: requests.Session, url: str, out: list[str], opened: threading.Event) -> None:
    """Every `event:` line of the stream until it ends (or 30 s)."""
    try:
        with http.get(url, stream=True, timeout=30) as stream:
            for line in stream.iter_lines(decode_unicode=True):
                opened.set()
                if line.startswith("event: "):
                    out.append(line[7:])
    except requests.RequestException as exc:
        out.append(f"error: {exc.__class__.__name__}")
    out.append("ended")


def _open(officer: Officer, path: str) -> tuple[list[str], threading.Thread]:
    events: list[str] = []
    opened = threading.Event()
    reader = threading.Thread(target=_read_events, args=(officer.http, officer.hub.base + path, events, opened),
                              daemon=True)
    reader.start()
    assert opened.wait(10), "the stream did not open"
    return events, reader


@pytest.mark.parametrize("path", STREAMS)
def test_logging_out_in_another_tab_ends_the_open_stream(sqlite_hub, path) -> None:
    officer = Officer(sqlite_hub, *sqlite_hub.add_user("operator"))
    events, reader = _open(officer, path)
    other_tab = requests.Session()
    other_tab.cookies.update(officer.http.cookies)
    page = other_tab.get(sqlite_hub.base + "/laporan", timeout=10)
    assert page.status_code == 200
    answer = other_tab.post(sqlite_hub.base + "/keluar", data={"csrf_token": Officer._token(page.text)},
                            timeout=10, allow_redirects=False)
    assert answer.status_code in (302, 303)
    started = time.monotonic()
    reader.join(10)
    assert not reader.is_alive(), "the stream went on after the logout"
    assert time.monotonic() - started < 6
    assert events[-2:] == ["logout", "ended"]
    # and the browser's reconnect is refused
    again = officer.http.get(sqlite_hub.base + path, timeout=10, allow_redirects=False)
    assert again.status_code in (302, 401, 403)


def test_disabling_the_account_ends_its_open_stream(sqlite_hub) -> None:
    username, password = sqlite_hub.add_user("operator")
    officer = Officer(sqlite_hub, username, password)
    events, reader = _open(officer, "/live/stream")
    time.sleep(2.5)  # a session that holds keeps its stream (past one check)
    assert reader.is_alive() and "logout" not in events
    sqlite_hub.cli("hub", "users", "disable", username)
    reader.join(10)
    assert not reader.is_alive(), "the stream of a disabled account went on"
    assert events[-2:] == ["logout", "ended"]
