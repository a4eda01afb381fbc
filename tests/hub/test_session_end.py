"""The end of an officer's session on a 12-hour night shift: an open page warns 15 minutes
before it and the officer carries on with the password, without leaving the page (its alerts,
its stream, typed text); a form's token lives as long as its session; a session that does end
sends the page to the login, which says why and returns to the same page.

Screenshots: tests/artifacts/hub-session-ending.png (1366×768, the command center's screen).
"""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select, update

from hub.auth import UserSession
from hub.models import AuditEntry, utcnow
from tests.hub.test_dashboard import PASSWORD, login, make_app

W, H = 1366, 768


def _expire_in(db_sessions, seconds: float, username: str | None = None) -> None:
    """Move the end of every session (or one user's) to `seconds` from now."""
    from hub.models import User

    with db_sessions() as db:
        query = update(UserSession).values(expires_at=utcnow() + dt.timedelta(seconds=seconds))
        if username:
            uid = db.scalar(select(User.id).where(User.username == username))
            query = query.where(UserSession.user_id == uid)
        db.execute(query)
        db.commit()


def _left_h(db_sessions, username: str) -> float:
    from hub.models import User

    with db_sessions() as db:
        uid = db.scalar(select(User.id).where(User.username == username))
        ends = db.scalars(select(UserSession.expires_at).where(UserSession.user_id == uid)).all()
    assert len(ends) == 1, ends
    return (ends[0] - utcnow()).total_seconds() / 3600


def _sign_in(page, name: str, password: str) -> None:
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


@pytest.fixture
def hub_app(tmp_path, broker):
    return make_app(tmp_path, broker, f"sqlite:///{tmp_path / 'hub.db'}")


def test_extending_needs_the_password_is_throttled_and_audited(hub_app) -> None:
    writer = hub_app.extensions["posko_db"].writer
    op = login(hub_app, "op")
    _expire_in(writer, 600, "op")
    state = op.get("/sesi").get_json()
    assert 590 <= state["left_s"] <= 600 and state["warn_s"] == 900

    empty = op.post("/sesi/perpanjang", data={})
    assert empty.status_code == 400 and empty.get_json()["error"] == "password"
    wrong = op.post("/sesi/perpanjang", data={"password": "bukan-sandinya"})
    assert wrong.status_code == 401 and wrong.get_json()["message"] == "Kata sandi salah."
    assert _left_h(writer, "op") < 0.2  # nothing extended

    right = op.post("/sesi/perpanjang", data={"password": PASSWORD})
    assert right.status_code == 200
    assert 11.9 * 3600 <= right.get_json()["left_s"] <= 12 * 3600
    assert 11.9 <= _left_h(writer, "op") <= 12.0
    with writer() as db:
        actions = db.scalars(select(AuditEntry.action).where(AuditEntry.actor == "op")).all()
    assert "sesi_perpanjang" in actions

    # Another officer's session is not touched, and guessing is throttled like the login.
    other = login(hub_app, "op2")
    _expire_in(writer, 600, "op2")
    codes = [other.post("/sesi/perpanjang", data={"password": f"tebak-{i}"}).status_code for i in range(12)]
    assert codes[0] == 401 and codes[-1] == 429, codes
    assert _left_h(writer, "op2") < 0.2
    assert 11.9 <= _left_h(writer, "op") <= 12.0


def test_no_session_no_extension(hub_app) -> None:
    anonymous = hub_app.test_client()
    response = anonymous.post("/sesi/perpanjang", data={"password": PASSWORD})
    assert response.status_code == 401 and response.get_json()["error"] == "session"
    assert anonymous.get("/sesi").status_code in (302, 401)


def test_a_pages_form_token_still_works_13_hours_later_while_its_session_holds(hub_app, monkeypatch) -> None:
    """The dashboard opened at the start of the shift, its session extended, must still be
    able to post (acknowledge an alert, extend again) at hour 13: the token is bound to the
    session, which the hub ends itself, not to a 12-hour clock of its own."""
    hub_app.config["WTF_CSRF_ENABLED"] = True
    client = hub_app.test_client()
    page = client.get("/masuk").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert client.post("/masuk", data={"username": "op", "password": PASSWORD, "csrf_token": token}).status_code == 302
    page = client.get("/laporan").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)

    start = int(time.time())
    clock = {"now": start + int(11.9 * 3600)}  # what itsdangerous signs and checks with
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: clock["now"])
    first = client.post("/sesi/perpanjang", data={"password": PASSWORD}, headers={"X-CSRFToken": token})
    assert first.status_code == 200, first.get_data(as_text=True)[:300]
    # Hour 13: the page's token from hour 0, and the cookie re-signed at the extension.
    clock["now"] = start + 13 * 3600
    response = client.post("/sesi/perpanjang", data={"password": PASSWORD}, headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    # and a forged post without the token is still refused
    assert client.post("/sesi/perpanjang", data={"password": PASSWORD}).status_code == 400


@pytest.mark.browser
@pytest.mark.broker
@pytest.mark.timeout(180)
def test_the_open_dashboard_warns_and_carries_on_with_the_password(sqlite_hub, new_page, artifacts) -> None:
    hub = sqlite_hub
    name, password = hub.add_user("operator")
    page = new_page(W, H)
    page.goto(hub.base + "/masuk")
    _sign_in(page, name, password)
    page.wait_for_selector("nav >> text=Laporan")
    band = page.locator("#session-ending")
    assert band.is_hidden()  # 12 hours left: nothing to say

    _expire_in(hub.db, 10 * 60, name)
    page.reload()
    page.wait_for_selector("#session-ending", state="visible")
    assert "10 menit" in band.inner_text()
    page.evaluate("window.sameDocument = 'yes'")  # gone if the page were reloaded or left
    page.screenshot(path=str(artifacts / "hub-session-ending.png"))

    band.locator("input[name=password]").fill("salah-sekali")
    band.locator("button[type=submit]").click()
    page.wait_for_selector("#session-ending .session-problem", state="visible")
    assert "Kata sandi salah" in band.locator(".session-problem").inner_text()
    assert _left_h(hub.db, name) < 0.2

    band.locator("input[name=password]").fill(password)
    band.locator("button[type=submit]").click()
    page.wait_for_selector("#session-ending", state="hidden")
    assert page.evaluate("window.sameDocument") == "yes"
    assert 11.9 <= _left_h(hub.db, name) <= 12.0
    assert "/masuk" not in page.url

    # Extended in another tab: this page's band goes away when the officer comes back to it
    # (and at its next look anyway, every minute).
    _expire_in(hub.db, 5 * 60, name)
    page.reload()
    page.wait_for_selector("#session-ending", state="visible")
    with hub.db() as db:  # what an extension in another tab does
        db.execute(update(UserSession).values(expires_at=utcnow() + dt.timedelta(hours=12)))
        db.commit()
    page.evaluate("window.sameDocument = 'still'; window.dispatchEvent(new Event('focus'))")
    page.wait_for_selector("#session-ending", state="hidden", timeout=10_000)
    assert page.evaluate("window.sameDocument") == "still"


@pytest.mark.browser
@pytest.mark.broker
@pytest.mark.timeout(180)
def test_a_session_that_ends_goes_to_the_login_which_says_why_and_returns(sqlite_hub, new_page) -> None:
    hub = sqlite_hub
    name, password = hub.add_user("operator")
    page = new_page(W, H)
    page.goto(hub.base + "/masuk?next=/peringatan")
    _sign_in(page, name, password)
    page.wait_for_url("**/peringatan")
    _expire_in(hub.db, 3, name)
    page.wait_for_url("**/masuk?berakhir=1**", timeout=20_000)
    assert "Sesi Anda sudah berakhir" in page.inner_text("main")
    _sign_in(page, name, password)
    page.wait_for_url("**/peringatan")
