"""The dashboard in Debian's Chromium (Playwright) against a running SQLite hub.

Screenshots of every page and state go to tests/artifacts/hub-*.png at the command center's
1366×768 (light, and dark where the theme matters).
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from posko import topics
from posko.messages import Alert, AlertAck, Heartbeat
from tests.hub.support import report_body

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.timeout(120)]

W, H = 1366, 768


@pytest.fixture(scope="module")
def people(sqlite_hub):
    hub = sqlite_hub
    return {role: hub.add_user(role) for role in ("operator", "supervisor", "admin")}


@pytest.fixture(scope="module")
def unit(sqlite_hub):
    return sqlite_hub.add_unit("Posko Alun-alun")


def send(hub, token, **overrides) -> dict:
    body = report_body(**overrides)
    response = requests.post(f"{hub.base}/api/v1/reports", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return body


def login(new_page, hub, user, path="/laporan", **context):
    page = new_page(W, H, **context)
    page.goto(hub.base + path)
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("button[type=submit]")
    page.wait_for_selector("nav >> text=Laporan")
    return page


def test_login_wrong_password_and_backoff(sqlite_hub, people, new_page, artifacts):
    hub = sqlite_hub
    page = new_page(W, H)
    page.goto(hub.base + "/laporan")
    assert "/masuk" in page.url
    page.screenshot(path=str(artifacts / "hub-login.png"))
    user = hub.add_user("operator")
    for _ in range(3):
        page.fill("input[name=username]", user[0])
        page.fill("input[name=password]", "salah-sekali")
        page.click("button[type=submit]")
        assert "kata sandi salah" in page.inner_text(".flash-error")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])  # right, but too soon after 3 failures
    page.click("button[type=submit]")
    assert "Terlalu banyak percobaan" in page.inner_text(".flash-error")
    time.sleep(1.2)  # the first backoff step is 1 s
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("button[type=submit]")
    page.wait_for_selector("#report-table")
    expected = ("status of 401", "status of 429")  # the refused logins themselves
    assert [e for e in page.console_errors if not any(x in e for x in expected)] == []


def test_report_arrives_live_and_script_is_escaped(sqlite_hub, people, unit, new_page, artifacts):
    hub = sqlite_hub
    page = login(new_page, hub, people["operator"])
    page.wait_for_function("() => document.body.dataset.live === 'connected'")
    body = send(hub, unit[1], description="<script>window.pwned = 1</script> motor hilang",
                location={"text": "Parkiran <b>Pasar</b>"})
    row = page.wait_for_selector(f'tr[data-report-id="{body["id"]}"]', timeout=10000)
    assert "<script>window.pwned = 1</script>" in row.inner_text()
    assert page.evaluate("window.pwned") is None
    assert page.locator("#toasts .toast").count() >= 1
    page.screenshot(path=str(artifacts / "hub-queue.png"))
    row.query_selector("a").click()
    page.wait_for_selector("#description")
    assert page.inner_text("#description") == "<script>window.pwned = 1</script> motor hilang"
    assert page.locator("#description script").count() == 0 and page.evaluate("window.pwned") is None
    assert page.console_errors == []


def test_triage_changes_state_with_audit(sqlite_hub, people, unit, new_page, artifacts):
    hub = sqlite_hub
    import hashlib
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (480, 320), (40, 90, 160))
    ImageDraw.Draw(img).rectangle((60, 60, 420, 260), fill=(230, 200, 40))
    jpeg = io.BytesIO()
    img.save(jpeg, "JPEG")
    sha = hashlib.sha256(jpeg.getvalue()).hexdigest()
    body = send(hub, unit[1], photos=[sha])
    stored = requests.put(f"{hub.base}/api/v1/photos/{sha}", data=jpeg.getvalue(), timeout=10,
                          headers={"Authorization": f"Bearer {unit[1]}"})
    assert stored.status_code == 201
    page = login(new_page, hub, people["operator"], f"/laporan/{body['id']}")
    page.goto(f"{hub.base}/laporan/{body['id']}")
    assert page.evaluate("document.querySelector('.photos img').naturalWidth") == 480
    assert page.inner_text("#report-state") == "Baru"
    page.click('button[data-state="diverifikasi"]')
    page.wait_for_selector("#report-state >> text=Diverifikasi")
    audit = page.inner_text("#audit")
    assert "Status diubah" in audit and people["operator"][0] in audit and "Baru → Diverifikasi" in audit
    page.fill("textarea[name=text]", "Sudah ditelepon, korban menunggu di posko")
    page.click("#add-note")
    page.wait_for_selector("#notes >> text=korban menunggu")
    assert "korban menunggu" not in page.inner_text("#audit")  # the thread is apart from the trail
    page.select_option("select[name=user_id]", label=f"Bripka {people['supervisor'][0]}")
    page.click("text=Simpan penugasan")
    page.wait_for_selector("#audit >> text=ditugaskan kepada")
    page.screenshot(path=str(artifacts / "hub-report.png"), full_page=True)
    page.select_option("select[name=reason]", "laporan ganda")
    page.click('button[data-state="ditolak"]')
    dialog = page.wait_for_selector("#confirm-dialog[open]")
    assert "tidak dapat dibuka lagi" in dialog.inner_text() and not page.is_visible("#confirm-dialog .confirm-extra")
    page.click("#confirm-dialog button.confirm-cancel")  # cancel: nothing happens
    page.wait_for_selector("#confirm-dialog", state="hidden")
    assert page.inner_text("#report-state") == "Diverifikasi"
    page.click('button[data-state="ditolak"]')
    page.click("#confirm-dialog button.confirm-ok")
    page.wait_for_selector("#report-state >> text=Ditolak")
    assert "alasan: laporan ganda" in page.inner_text("#audit")
    assert page.console_errors == []


def test_reporter_privacy_by_role_and_audited_view(sqlite_hub, people, unit, new_page, artifacts):
    hub = sqlite_hub
    body = send(hub, unit[1], reporter={"name": "Ibu Sari", "phone": "0812-3456-789"})
    operator = login(new_page, hub, people["operator"], f"/laporan/{body['id']}")
    operator.goto(f"{hub.base}/laporan/{body['id']}")
    html = operator.content()
    assert "+628123456789" not in html and "Ibu Sari" not in html and "0812" not in html
    assert operator.locator("#reveal-reporter").count() == 0
    assert operator.is_visible("#reporter-hidden")
    status = operator.evaluate("""async (url) => {
        const csrf = document.querySelector('meta[name=csrf-token]').content;
        const r = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': csrf}});
        return r.status; }""", f"/laporan/{body['id']}/pelapor")
    assert status == 403

    supervisor = login(new_page, hub, people["supervisor"], f"/laporan/{body['id']}")
    supervisor.goto(f"{hub.base}/laporan/{body['id']}")
    assert "+628123456789" not in supervisor.content()
    supervisor.click("#reveal-reporter")
    supervisor.wait_for_selector("#reporter-phone")
    assert supervisor.inner_text("#reporter-phone") == "+628123456789"
    assert supervisor.inner_text("#reporter-name") == "Ibu Sari"
    entry = supervisor.locator('#audit li[data-action="lihat_pelapor"]')
    assert entry.count() == 1 and people["supervisor"][0] in entry.inner_text()
    supervisor.screenshot(path=str(artifacts / "hub-report-supervisor.png"), full_page=True)
    operator.reload()
    assert "Data pelapor dilihat" in operator.inner_text("#audit")  # every view is on the trail


def test_alert_live_on_every_dashboard_until_acknowledged(sqlite_hub, people, unit, new_page, mqtt_client,
                                                          artifacts):
    hub = sqlite_hub
    unit_id = unit[0]
    first = login(new_page, hub, people["operator"])
    second = login(new_page, hub, people["supervisor"], "/armada")
    for page in (first, second):
        page.wait_for_function("() => document.body.dataset.live === 'connected'")
    listener = mqtt_client()
    listener.subscribe(topics.alert_ack(unit_id, hub.topic_root))
    alert = Alert(id=str(uuid.uuid4()), unit=unit_id, posko="Posko Alun-alun", source="assistant",
                  text="Tolong, ada kecelakaan di depan, orangnya berdarah! <img src=x onerror=alert(1)>")
    mqtt_client().publish(topics.alert(unit_id, hub.topic_root), alert.to_json(), qos=1)
    selector = f'.alert-card[data-alert-id="{alert.id}"]'
    for page in (first, second):
        card = page.wait_for_selector(selector, timeout=10000)
        assert "orangnya berdarah" in card.inner_text() and "<img src=x" in card.inner_text()
        assert page.evaluate("document.body.dataset.alarm") == "on"
        page.wait_for_function("() => Number(document.body.dataset.alarmBeeps || 0) >= 1")
    first.screenshot(path=str(artifacts / "hub-alert.png"))
    time.sleep(2.5)
    assert second.is_visible(selector)  # it stays until someone acknowledges it
    first.click(f"{selector} button.ack")
    for page in (first, second):
        page.wait_for_selector(selector, state="detached", timeout=10000)
        assert page.evaluate("document.body.dataset.alarm") == "off"
    ack = AlertAck.from_json(listener.expect(timeout=10).payload)
    assert ack.alert_id == alert.id and people["operator"][0] in ack.officer
    first.goto(hub.base + "/peringatan")
    assert people["operator"][0] in first.inner_text(f'#alert-log tr[data-alert-id="{alert.id}"]')
    first.screenshot(path=str(artifacts / "hub-alerts.png"))
    assert first.console_errors == [] and second.console_errors == []


def test_charts_render(sqlite_hub, people, unit, new_page, artifacts):
    hub = sqlite_hub
    for category in ("kecelakaan", "kecelakaan", "bencana"):
        send(hub, unit[1], category=category)
    page = login(new_page, hub, people["operator"], "/grafik")
    page.goto(hub.base + "/grafik")
    page.wait_for_function("() => document.body.dataset.charts === 'ready'")
    data = page.evaluate("""() => {
        const c = Chart.getChart('chart-categories'), h = Chart.getChart('chart-hours');
        return {labels: c.data.labels, counts: c.data.datasets[0].data, hours: h.data.datasets[0].data}; }""")
    counts = dict(zip(data["labels"], data["counts"], strict=True))
    assert counts["Kecelakaan"] >= 2 and counts["Bencana"] >= 1
    assert len(data["hours"]) == 48 and data["hours"][-1] >= 3
    painted = page.evaluate("""() => {
        const cv = document.getElementById('chart-categories');
        const px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
        let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++; return n; }""")
    assert painted > 1000
    page.screenshot(path=str(artifacts / "hub-charts.png"))
    assert page.console_errors == []


def test_fleet_admin_adds_unit_and_sees_heartbeat(sqlite_hub, people, new_page, mqtt_client, artifacts):
    hub = sqlite_hub
    page = login(new_page, hub, people["admin"], "/armada")
    page.goto(hub.base + "/armada")
    unit_id = f"kiosk-ui-{uuid.uuid4().hex[:6]}"
    page.fill("input[name=unit_id]", unit_id)
    page.fill("input[name=name]", "Posko Terminal")
    page.click("text=Tambah unit")
    code = page.inner_text("#enrol-code")
    enrolled = requests.post(f"{hub.base}/api/v1/enroll", json={"unit": unit_id, "code": code}, timeout=10)
    assert enrolled.status_code == 200
    beat = Heartbeat(unit=unit_id, state="online", version="0.1.0", disk_free_mb=2048,
                     outbox_pending=37, interval_s=30)
    mqtt_client().publish(topics.unit_status(unit_id, hub.topic_root), beat.to_json(), qos=1)
    page.goto(hub.base + "/armada")
    page.wait_for_selector(f'tr[data-unit="{unit_id}"][data-online="1"]', timeout=15000)
    row = page.inner_text(f'tr[data-unit="{unit_id}"]')
    assert "37" in row and "2048 MB" in row and "aktif" in row
    page.screenshot(path=str(artifacts / "hub-fleet.png"))
    page.click(f'tr[data-unit="{unit_id}"] >> text=Cabut token')
    dialog = page.wait_for_selector("#confirm-dialog[open]")
    assert unit_id in dialog.inner_text() and "tidak dapat lagi mengirim laporan" in dialog.inner_text()
    page.screenshot(path=str(artifacts / "hub-fleet-confirm-revoke.png"))
    page.click("#confirm-dialog button.confirm-ok")
    page.wait_for_selector(f'tr[data-unit="{unit_id}"] >> text=dicabut')
    refused = requests.post(f"{hub.base}/api/v1/reports", json=report_body(), timeout=10,
                            headers={"Authorization": f"Bearer {enrolled.json()['token']}"})
    assert refused.status_code == 401
    operator = login(new_page, hub, people["operator"], "/armada")
    operator.goto(hub.base + "/armada")
    assert operator.locator("text=Tambah unit").count() == 0  # only admins manage units
    assert page.console_errors == []


def test_blocks_page_and_role(sqlite_hub, people, new_page, artifacts):
    hub = sqlite_hub
    page = login(new_page, hub, people["supervisor"], "/blokir")
    page.goto(hub.base + "/blokir")
    page.wait_for_selector("#blocks")
    page.screenshot(path=str(artifacts / "hub-blocks.png"))
    operator = login(new_page, hub, people["operator"])
    assert operator.locator("nav >> text=Blokir").count() == 0
    response = operator.goto(hub.base + "/blokir")
    assert response.status == 403 and "tidak diizinkan" in operator.inner_text("main")


# --- the queue on a night shift ----------------------------------------------------------
def _ids(page) -> list[str]:
    return page.eval_on_selector_all("#report-rows tr[data-report-id]", "rs => rs.map(r => r.dataset.reportId)")


def test_queue_severity_sort_search_and_keys(sqlite_hub, people, unit, new_page, artifacts):
    hub = sqlite_hub
    tag = uuid.uuid4().hex[:6]
    normal = send(hub, unit[1], description=f"dompet hilang {tag}", category="kehilangan",
                  location={"text": "Alun-alun"})
    high = send(hub, unit[1], description=f"ada orang bawa celurit {tag}", category="gangguan",
                location={"text": "Terminal Batang"})
    medium = send(hub, unit[1], description=f"tabrakan ringan {tag}", category="kecelakaan",
                  location={"text": "Bundaran"})
    send(hub, unit[1], description=f"dompet saya juga {tag}", category="kehilangan", location={"text": "alun-alun"})
    page = login(new_page, hub, people["operator"], f"/laporan?q={tag}")
    page.goto(f"{hub.base}/laporan?q={tag}")
    ids = _ids(page)
    assert ids[:2] == [high["id"], medium["id"]] and len(ids) == 4  # high first, then medium
    colour = page.eval_on_selector(f'tr[data-report-id="{high["id"]}"] .sev', "e => getComputedStyle(e).color")
    assert colour == "rgb(180, 35, 24)"  # the high badge is red
    assert page.locator(f'tr[data-report-id="{normal["id"]}"] .dup').count() == 1  # likely duplicate
    assert page.is_visible("#shortcuts >> text=tandai laporan terpilih Diverifikasi")
    page.screenshot(path=str(artifacts / "hub-queue-severity.png"), full_page=True)
    page.click('th[data-sort="lokasi"] a')  # sort by any column: place, A to Z
    page.wait_for_selector('th[data-sort="lokasi"][aria-sort="ascending"]')
    assert _ids(page)[-1] == high["id"]  # Terminal comes last
    page.click('th[data-sort="lokasi"] a')
    page.wait_for_selector('th[data-sort="lokasi"][aria-sort="descending"]')
    assert _ids(page)[0] == high["id"]
    page.goto(f"{hub.base}/laporan?q={tag}")
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.evaluate("document.body.dataset.selected") == medium["id"]
    page.keyboard.press("k")
    assert page.evaluate("document.body.dataset.selected") == high["id"]
    page.keyboard.press("v")  # verify the selected report without leaving the queue
    page.wait_for_selector(f'tr[data-report-id="{high["id"]}"] .state-diverifikasi')
    page.screenshot(path=str(artifacts / "hub-queue-keyboard.png"))
    page.keyboard.press("Enter")
    page.wait_for_selector("#report-state >> text=Diverifikasi")
    assert high["id"] in page.url
    page.keyboard.press("v")  # already verified: the page offers the next step instead
    assert page.inner_text("#report-state") == "Diverifikasi"
    page.goto(f"{hub.base}/laporan")
    page.keyboard.press("/")
    page.keyboard.type("celurit " + tag)
    page.keyboard.press("Enter")
    page.wait_for_url("**q=celurit*")
    assert _ids(page) == [high["id"]]
    page.screenshot(path=str(artifacts / "hub-queue-search.png"))
    assert page.console_errors == []


def test_new_report_counts_in_title_chimes_and_lands_by_severity(sqlite_hub, people, unit, new_page, artifacts):
    hub = sqlite_hub
    page = login(new_page, hub, people["operator"])
    page.wait_for_function("() => document.body.dataset.live === 'connected'")
    other = login(new_page, hub, people["supervisor"], "/armada")  # any page counts new reports
    other.goto(hub.base + "/armada")
    other.wait_for_function("() => document.body.dataset.live === 'connected'")
    plain = send(hub, unit[1], description="helm hilang di parkiran", category="kehilangan")
    page.wait_for_selector(f'tr[data-report-id="{plain["id"]}"]')
    urgent = send(hub, unit[1], description="anak kecil tertabrak motor, berdarah", category="kecelakaan")
    row = page.wait_for_selector(f'tr[data-report-id="{urgent["id"]}"]')
    assert row.get_attribute("data-severity") == "high"
    ids = _ids(page)
    assert ids.index(urgent["id"]) < ids.index(plain["id"])  # severity first, also live
    page.wait_for_function("() => document.title.startsWith('(2) ')")
    assert int(page.evaluate("document.body.dataset.reportBeeps")) >= 2
    other.wait_for_function("() => document.title.startsWith('(2) ')")
    assert "Armada" in other.title()
    page.screenshot(path=str(artifacts / "hub-queue-live.png"))
    assert page.console_errors == [] and other.console_errors == []


def test_dark_theme_follows_the_browser(sqlite_hub, people, unit, new_page, artifacts):
    hub = sqlite_hub
    body = send(hub, unit[1], description="kebakaran rumah di gang mawar", category="bencana")
    light = login(new_page, hub, people["operator"], color_scheme="light")
    dark = login(new_page, hub, people["operator"], color_scheme="dark")
    for page in (light, dark):
        page.goto(hub.base + "/laporan")
    background = "getComputedStyle(document.body).backgroundColor"
    assert light.evaluate(background) == "rgb(243, 245, 248)"
    assert dark.evaluate(background) == "rgb(17, 22, 29)"
    card = dark.eval_on_selector("#report-table", "e => getComputedStyle(e).backgroundColor")
    assert card == "rgb(26, 33, 43)"
    dark.screenshot(path=str(artifacts / "hub-queue-dark.png"))
    dark.goto(hub.base + "/peta")  # a plain notice: readable on the dark background too
    dark.wait_for_selector("#map[data-ready='1']")
    ink = dark.eval_on_selector("#tiles-state", "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
    assert ink == ["rgb(230, 233, 238)", "rgb(29, 51, 80)"]
    dark.screenshot(path=str(artifacts / "hub-map-dark.png"))
    dark.goto(f"{hub.base}/laporan/{body['id']}")
    dark.screenshot(path=str(artifacts / "hub-report-dark.png"), full_page=True)
    assert dark.console_errors == []


def test_reveal_stays_prank_confirm_says_block(sqlite_hub, people, unit, new_page, artifacts):
    hub = sqlite_hub
    phone = f"0813-{uuid.uuid4().int % 10**8:08d}"
    pranks = [send(hub, unit[1], reporter={"name": "Iseng", "phone": phone},
                   description=f"laporan iseng {i}") for i in range(3)]
    page = login(new_page, hub, people["supervisor"], f"/laporan/{pranks[0]['id']}")
    page.goto(f"{hub.base}/laporan/{pranks[0]['id']}")
    page.click("#reveal-reporter")
    link = page.wait_for_selector("#reporter-phone")
    assert link.get_attribute("href").startswith("tel:+6281")
    page.fill("textarea[name=text]", "Ditelepon, tidak diangkat")
    page.click("#add-note")
    page.wait_for_selector("#notes >> text=tidak diangkat")
    assert page.is_visible("#reporter-phone")  # still revealed for this view
    assert page.locator('#audit li[data-action="lihat_pelapor"]').count() == 1
    page.screenshot(path=str(artifacts / "hub-report-revealed.png"), full_page=True)
    for i, body in enumerate(pranks):
        page.goto(f"{hub.base}/laporan/{body['id']}")
        page.select_option("select[name=reason]", "laporan palsu")
        page.click('button[data-state="ditolak"]')
        extra = page.wait_for_selector("#confirm-dialog[open] .confirm-extra")
        text = extra.inner_text()
        assert f"laporan palsu ke-{i + 1}" in text
        if i == 2:
            assert "akan DIBLOKIR" in text
            page.screenshot(path=str(artifacts / "hub-confirm-prank-block.png"))
        else:
            assert "DIBLOKIR" not in text
        page.click("#confirm-dialog button.confirm-ok")
        page.wait_for_selector("#report-state >> text=Ditolak")
    warn = page.inner_text(".flash-warn")
    assert "Nomor pelapor kini DIBLOKIR" in warn and "mencabut blokir" in warn
    assert "Nomor diblokir" in page.inner_text("#audit")
    page.screenshot(path=str(artifacts / "hub-report-blocked.png"), full_page=True)
    page.goto(hub.base + "/laporan")
    page.goto(f"{hub.base}/laporan/{pranks[0]['id']}")
    assert page.locator("#reporter-phone").count() == 0  # left the view: hidden again
    assert page.console_errors == []


def test_export_links_carry_the_filter(sqlite_hub, people, unit, new_page):
    hub = sqlite_hub
    tag = uuid.uuid4().hex[:6]
    send(hub, unit[1], description=f"motor hilang {tag}")
    page = login(new_page, hub, people["operator"], f"/laporan?q={tag}")
    page.goto(f"{hub.base}/laporan?q={tag}")
    with page.expect_download() as info:
        page.click("#export-csv")
    with open(info.value.path(), encoding="utf-8-sig", newline="") as fh:
        text = fh.read()
    assert tag in text and text.count("\r\n") == 2 and "telepon_pelapor" not in text
    assert page.console_errors == []


# --- the map without internet --------------------------------------------------------------
def test_map_without_then_with_tiles(sqlite_hub, people, unit, new_page, artifacts, tmp_path):
    from tests.hub.test_dashboard import make_mbtiles

    hub = sqlite_hub
    send(hub, unit[1], description="korban luka di jalan", category="kecelakaan",
         location={"text": "Jalan Pemuda", "lat": -6.91, "lon": 109.74})
    admin = login(new_page, hub, people["admin"], "/peta")
    admin.goto(hub.base + "/peta")
    admin.select_option("select[name=unit_id]", unit[0])
    admin.fill("input[name=lat]", "-6.9075")
    admin.fill("input[name=lon]", "109.7300")
    admin.click("text=Simpan letak posko")
    admin.wait_for_selector("#map[data-ready='1']")
    assert admin.get_attribute("#tiles-state", "data-tiles") == "0"
    assert admin.locator(".leaflet-tooltip.posko-label >> text=Posko Alun-alun").count() >= 1
    assert admin.locator("path.report-dot").count() >= 1
    assert admin.locator("img.leaflet-tile").count() == 0  # nothing fetched: a plain background
    admin.screenshot(path=str(artifacts / "hub-map-no-tiles.png"))
    source = tmp_path / "batang.mbtiles"
    digest = make_mbtiles(source, [(z, x, y, (60 + 40 * z, 140, 90 + 50 * x))
                                   for z in range(0, 3) for x in range(2 ** z) for y in range(2 ** z)])
    hub.cli("hub", "tiles", "install", str(source), "--sha256", digest)
    admin.reload()
    admin.wait_for_selector("#map[data-ready='1']")
    assert admin.get_attribute("#tiles-state", "data-tiles") == "1"
    admin.wait_for_function("() => Number(document.getElementById('map').dataset.tilesLoaded || 0) >= 1")
    width = admin.eval_on_selector("img.leaflet-tile-loaded", "i => i.naturalWidth")
    assert width == 256
    assert all(src.startswith(hub.base + "/peta/ubin/") for src in
               admin.eval_on_selector_all("img.leaflet-tile", "is => is.map(i => i.src)"))
    assert admin.locator(".leaflet-tooltip.posko-label >> text=Posko Alun-alun").count() >= 1
    admin.screenshot(path=str(artifacts / "hub-map-tiles.png"))
    missing = [e for e in admin.console_errors if "404" not in e]  # tiles past the test set
    assert missing == []


# --- talk groups and recordings agree --------------------------------------------------
def test_talkgroups_and_recordings_pages_agree(sqlite_hub, people, new_page, artifacts):
    from gateway.recorder import Recorder
    from gateway.recordings import resolve_folder
    from posko.config import load_settings
    from tests.gateway.test_recorder import encode_spurt

    hub = sqlite_hub
    settings = load_settings(environ=hub.env())
    recorder = Recorder(resolve_folder(settings.state_dir, settings.ptt.recordings_dir))
    for f in encode_spurt(80, spurt=0x4242):
        recorder.add("batang-kota", "pos-dewi", f)
    page = login(new_page, hub, people["supervisor"], "/grup-bicara")
    page.goto(hub.base + "/grup-bicara")
    row = page.wait_for_selector('#groups tr[data-group="batang-kota"]')
    assert "belum terdaftar" in row.inner_text() and "1 rekaman" in row.inner_text()
    assert page.locator("text=Belum ada grup bicara").count() == 0
    page.screenshot(path=str(artifacts / "hub-talkgroups-recorded.png"), full_page=True)
    page.click('#groups tr[data-group="batang-kota"] >> text=Daftarkan grup')
    page.wait_for_selector('#groups tr[data-group="batang-kota"] >> text=Tambah anggota')
    page.goto(hub.base + "/grup-bicara/rekaman")
    assert "WIB" in page.inner_text("#recordings thead")
    assert page.locator('#recordings tr[data-group="batang-kota"]').count() == 1
    page.screenshot(path=str(artifacts / "hub-recordings.png"), full_page=True)
    assert page.console_errors == []


def test_overdue_mark_comes_live_and_mine_filter(sqlite_hub, people, unit, new_page, artifacts):
    import datetime as dt

    from sqlalchemy import select

    from hub.models import Report, User

    hub = sqlite_hub
    tag = uuid.uuid4().hex[:6]
    late = send(hub, unit[1], description=f"korban luka parah {tag}", category="kecelakaan")
    soon = send(hub, unit[1], description=f"ada api di dapur warga {tag}", category="lainnya")
    with hub.db() as db:
        db.get(Report, late["id"]).received_at -= dt.timedelta(minutes=40)
        db.get(Report, soon["id"]).received_at -= dt.timedelta(minutes=14, seconds=54)  # overdue in 6 s
        me = db.scalar(select(User).where(User.username == people["operator"][0]))
        db.get(Report, late["id"]).assigned_to = me.id
        db.commit()
    page = login(new_page, hub, people["operator"], f"/laporan?q={tag}")
    page.goto(f"{hub.base}/laporan?q={tag}")
    late_row = f'tr[data-report-id="{late["id"]}"]'
    soon_row = f'tr[data-report-id="{soon["id"]}"]'
    assert page.is_visible(f"{late_row} .overdue-mark") and "40 mnt" in page.inner_text(f"{late_row} .age")
    assert not page.is_visible(f"{soon_row} .overdue-mark")
    assert people["operator"][0] in page.inner_text(f"{late_row} td.assignee")
    page.wait_for_selector(f"{soon_row}.overdue .overdue-mark", state="visible", timeout=20000)
    page.screenshot(path=str(artifacts / "hub-queue-overdue.png"))
    page.check("#mine")
    page.click("text=Saring")
    page.wait_for_url("**mine=1*")
    assert _ids(page) == [late["id"]]
    page.screenshot(path=str(artifacts / "hub-queue-mine.png"))
    assert page.console_errors == []
    supervisor = login(new_page, hub, people["supervisor"], "/jejak-audit")
    supervisor.goto(f"{hub.base}/laporan?q={tag}")
    with supervisor.expect_download():
        supervisor.click("#export-geojson")
    supervisor.goto(f"{hub.base}/jejak-audit")
    first = supervisor.inner_text('#hub-audit tr[data-action="ekspor"]')
    assert people["supervisor"][0] in first and f"q={tag}" in first and "GEOJSON" in first
    supervisor.screenshot(path=str(artifacts / "hub-audit.png"))
    assert supervisor.console_errors == []


def test_report_page_v_key_and_public_note_templates(sqlite_hub, people, unit, new_page, artifacts):
    hub = sqlite_hub
    body = send(hub, unit[1], description="sepeda hilang di sekolah")
    page = login(new_page, hub, people["operator"], f"/laporan/{body['id']}")
    page.goto(f"{hub.base}/laporan/{body['id']}")
    with page.expect_navigation():  # v submits the state form; the live update may come first
        page.keyboard.press("v")
    page.wait_for_selector("#report-state >> text=Diverifikasi")
    assert "Petugas akan menghubungi" in page.inner_text("#public-note")  # follows the state
    assert not page.is_visible("#note-text")
    page.select_option("#note-template", "sendiri")
    assert page.is_visible("#note-text")
    page.fill("#note-text", "Sepeda ditemukan, silakan ambil di Polsek.")
    page.click("form.public-note button[type=submit]")
    page.wait_for_selector("#public-note >> text=Sepeda ditemukan")
    page.screenshot(path=str(artifacts / "hub-report-public-note.png"), full_page=True)
    page.click('button[data-state="ditindaklanjuti"]')
    page.wait_for_selector("#report-state >> text=Ditindaklanjuti")
    assert "ditindaklanjuti petugas" in page.inner_text("#public-note")  # replaced at the next state
    assert page.console_errors == []


def test_state_changes_reach_other_dashboards(sqlite_hub, people, unit, new_page, artifacts):
    hub = sqlite_hub
    body = send(hub, unit[1], description="anak hilang di pasar malam")
    watcher = login(new_page, hub, people["operator"], f"/laporan/{body['id']}")
    watcher.goto(f"{hub.base}/laporan/{body['id']}")
    queue = login(new_page, hub, people["operator"])
    for page in (watcher, queue):
        page.wait_for_function("() => document.body.dataset.live === 'connected'")
    actor = login(new_page, hub, people["supervisor"], f"/laporan/{body['id']}")
    actor.goto(f"{hub.base}/laporan/{body['id']}")
    actor.click('button[data-state="diverifikasi"]')
    actor.wait_for_selector("#report-state >> text=Diverifikasi")
    notice = watcher.wait_for_selector("#state-changed", state="visible", timeout=10000)
    assert f"Bripka {people['supervisor'][0]}" in notice.inner_text() and "Diverifikasi" in notice.inner_text()
    queue.wait_for_selector(f'tr[data-report-id="{body["id"]}"] .state-diverifikasi', timeout=10000)
    watcher.screenshot(path=str(artifacts / "hub-report-changed-elsewhere.png"))
    assert not actor.is_visible("#state-changed")  # the one who moved it is not warned
    assert watcher.console_errors == [] and queue.console_errors == []
