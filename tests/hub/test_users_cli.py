"""`posko hub users passwd|disable|enable|list`: the command line ends sessions like the page."""

from __future__ import annotations

import pytest
import requests

from tests.hub.support import Officer

pytestmark = [pytest.mark.broker]


def _logged_in(hub, officer: Officer) -> bool:
    return requests.get(f"{hub.base}/laporan", cookies=officer.http.cookies, timeout=30,
                        allow_redirects=False).status_code == 200


def test_cli_password_reset_and_disable_end_sessions(sqlite_hub):
    hub = sqlite_hub
    username, password = hub.add_user("operator")
    officer = Officer(hub, username, password)
    assert _logged_in(hub, officer)
    result = hub.cli("hub", "users", "passwd", username, "--password-stdin", stdin="lewat-cli-12345\n")
    assert "1 session(s) ended" in result.stdout
    assert not _logged_in(hub, officer)
    again = Officer(hub, username, "lewat-cli-12345")
    hub.cli("hub", "users", "disable", username)
    assert not _logged_in(hub, again)
    listing = hub.cli("hub", "users", "list").stdout
    assert any(line.split()[:3] == [username, "operator", "disabled"] for line in listing.splitlines())
    hub.cli("hub", "users", "enable", username)
    assert _logged_in(hub, Officer(hub, username, "lewat-cli-12345"))
    weak = hub.cli("hub", "users", "passwd", username, "--password-stdin", stdin="pendek\n", check=False)
    assert weak.returncode == 2 and "at least 10" in weak.stderr
    unknown = hub.cli("hub", "users", "disable", "nobody-here", check=False)
    assert unknown.returncode == 2 and "no user" in unknown.stderr
