"""Users and roles in the browser (issue 15, item 13), in Debian's Chromium (Playwright):
an admin adds an officer, changes the role, resets the password and disables the account;
each change is audited, and a reset or a disabled account ends that officer's open session.

Screenshots go to tests/artifacts/hub-users-*.png (1366×768, the command center's screen).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from hub.models import AuditEntry

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.timeout(180)]

W, H = 1366, 768


def login(new_page, hub, username, password):
    page = new_page(W, H)
    page.goto(hub.base + "/masuk")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("nav >> text=Laporan")
    return page


def row(page, username):
    return page.locator(f'tr[data-user="{username}"]')


def test_admin_manages_officers_and_sessions_end(sqlite_hub, new_page, artifacts):
    hub = sqlite_hub
    admin = hub.add_user("admin")
    page = login(new_page, hub, *admin)
    page.click("nav >> text=Pengguna")
    page.wait_for_selector("#users")
    page.screenshot(path=str(artifacts / "hub-users-list.png"), full_page=True)

    # A bad password is refused, naming the field, and nothing is added.
    name = f"budi-{uuid.uuid4().hex[:5]}"
    page.fill("#add-user input[name=username]", name)
    page.fill("#add-user input[name=display_name]", "Bripka Budi")
    page.fill("#add-user input[name=password]", "pendek")
    page.evaluate("document.querySelector('#add-user input[name=password]').removeAttribute('minlength')")
    page.click("#add-user button[type=submit]")
    assert page.locator("#problem").get_attribute("data-field") == "password"
    assert "minimal 10" in page.inner_text("#problem")
    assert row(page, name).count() == 0
    page.screenshot(path=str(artifacts / "hub-users-add-refused.png"), full_page=True)

    page.fill("#add-user input[name=username]", name)
    page.fill("#add-user input[name=password]", "sandi-awal-123")
    page.select_option("#add-user select[name=role]", "operator")
    page.click("#add-user button[type=submit]")
    page.wait_for_selector(f'tr[data-user="{name}"]')
    assert "ditambahkan" in page.inner_text(".flash-info")

    # The new officer works in a browser of their own.
    officer = login(new_page, hub, name, "sandi-awal-123")
    assert officer.locator("nav >> text=Blokir").count() == 0  # an operator

    row(page, name).locator("select[name=role]").select_option("supervisor")
    row(page, name).locator(".role-form button").click()
    page.wait_for_selector(".flash-info")
    assert row(page, name).locator("select[name=role]").input_value() == "supervisor"
    officer.reload()
    assert officer.locator("nav >> text=Blokir").count() == 1  # the new role is in force

    # A password reset ends the officer's open session at once.
    row(page, name).locator("input[name=password]").fill("sandi-baru-4567")
    row(page, name).locator("input[name=password2]").fill("sandi-baru-4567")
    row(page, name).locator(".reset-form button").click()
    page.wait_for_selector(".flash-info")
    assert "1 sesi diakhiri" in page.inner_text(".flash-info")
    # The officer's open page (its live stream) goes to the login by itself within seconds.
    officer.wait_for_url("**/masuk**", timeout=15000)
    officer.goto(hub.base + "/laporan")
    assert "/masuk" in officer.url, "the old session survived a password reset"
    officer.fill("input[name=username]", name)
    officer.fill("input[name=password]", "sandi-baru-4567")
    officer.click("button[type=submit]")
    officer.wait_for_selector("nav >> text=Laporan")

    # Disabling the account ends the new session too, and the login is refused.
    row(page, name).locator(".active-form button").click()
    page.wait_for_selector(".flash-info")
    assert row(page, name).locator(".state").inner_text().strip() == "nonaktif"
    page.screenshot(path=str(artifacts / "hub-users-disabled.png"), full_page=True)
    officer.wait_for_url("**/masuk**", timeout=15000)  # its open page went to the login
    officer.goto(hub.base + "/laporan")
    assert "/masuk" in officer.url, "a disabled officer's session survived"
    officer.fill("input[name=username]", name)
    officer.fill("input[name=password]", "sandi-baru-4567")
    officer.click("button[type=submit]")
    assert "kata sandi salah" in officer.inner_text(".flash-error")

    # Every change is in the audit trail, on the page and in the database.
    log = page.inner_text("#user-log")
    for words in ("Pengguna ditambahkan", "Peran diubah", "Kata sandi diganti", "Akun dinonaktifkan"):
        assert words in log, words
    with hub.db() as db:
        actions = [e.action for e in db.scalars(select(AuditEntry).where(
            AuditEntry.actor == admin[0], AuditEntry.detail.contains(name)).order_by(AuditEntry.id))]
    assert actions == ["pengguna_tambah", "pengguna_peran", "pengguna_sandi", "pengguna_nonaktif"]
    # The refused form itself answered 400; nothing else may have failed.
    assert [e for e in page.console_errors if "status of 400" not in e] == []


def test_only_admins_see_the_users_page(sqlite_hub, new_page):
    hub = sqlite_hub
    page = login(new_page, hub, *hub.add_user("supervisor"))
    assert page.locator("nav >> text=Pengguna").count() == 0
    response = page.goto(hub.base + "/pengguna")
    assert response.status == 403
