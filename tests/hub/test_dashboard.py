"""The command center's queue, report page, export, map and tiles, in-process (Flask test
client on a real SQLite database migrated by Alembic). Browser behaviour is in
test_browser.py; the pure parts (severity, triage) are tested directly here too."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import sqlite3
import uuid

import pytest
from PIL import Image
from sqlalchemy import select

from hub import severity, tiles, triage
from posko.config import load_settings
from tests.hub.support import report_body

pytestmark = [pytest.mark.timeout(120)]

PASSWORD = "kata-sandi-uji-123"


# --- pure: severity ------------------------------------------------------------------------
@pytest.mark.parametrize(("category", "text", "level"), [
    ("pencurian", "motor beat hitam hilang di parkiran pasar", "normal"),
    ("gangguan", "ada orang bawa golok di depan warung", "high"),
    ("kecelakaan", "tabrakan motor, pengendara berdarah", "high"),
    ("lainnya", "anak saya hilang di alun-alun", "high"),
    ("bencana", "rumah warga terbakar di gang mawar", "high"),
    ("kecelakaan", "mobil menyerempet pagar, tidak ada yang cedera", "medium"),
    ("gangguan", "lampu mati di jalan pemuda", "normal"),  # "mati" of a lamp is not a death
    ("lainnya", "antre tiket kereta api penuh", "normal"),  # "api" of a train is not a fire
    ("lainnya", "LUKA di kepala", "high"),  # case does not matter
    ("lainnya", "pelukan hangat", "normal"),  # whole words only: "luka" inside "pelukan"
])
def test_severity_from_words_and_category(category, text, level):
    assert severity.assess(category, text) == level


def test_severity_reasons_name_each_kind():
    assert severity.reasons("bocah dibacok pakai celurit, rumah dibakar") == ["injury", "weapon", "child", "fire"]
    assert severity.LEVELS[0] == "high" and severity.RANK["high"] < severity.RANK["normal"]


# --- pure: triage --------------------------------------------------------------------------
T0 = dt.datetime(2026, 12, 24, 14, 10)
LIMITS = triage.OverdueLimits(high_min=15, medium_min=60, normal_min=240)


def test_overdue_by_severity_and_only_while_waiting():
    assert not triage.is_overdue("baru", "high", T0, T0 + dt.timedelta(minutes=14), LIMITS)
    assert triage.is_overdue("baru", "high", T0, T0 + dt.timedelta(minutes=15), LIMITS)
    assert triage.is_overdue("diverifikasi", "medium", T0, T0 + dt.timedelta(minutes=61), LIMITS)
    assert not triage.is_overdue("baru", "normal", T0, T0 + dt.timedelta(minutes=61), LIMITS)
    assert not triage.is_overdue("ditindaklanjuti", "high", T0, T0 + dt.timedelta(hours=9), LIMITS)
    assert not triage.is_overdue("selesai", "high", T0, T0 + dt.timedelta(hours=9), LIMITS)
    assert triage.age_s(T0, T0 - dt.timedelta(seconds=5)) == 0  # a clock step back


def test_duplicates_same_category_place_and_hour():
    seen = [
        triage.Seen("a", "pencurian", "Parkiran Pasar", T0),
        triage.Seen("b", "pencurian", "parkiran  pasar,", T0 + dt.timedelta(minutes=40)),
        triage.Seen("c", "pencurian", "Parkiran Pasar", T0 + dt.timedelta(minutes=130)),  # hours later
        triage.Seen("d", "kehilangan", "Parkiran Pasar", T0),  # other category
        triage.Seen("e", "pencurian", "Terminal", T0),  # other place
    ]
    assert triage.duplicates(seen) == {"a": ["b"], "b": ["a"]}


# --- the app -------------------------------------------------------------------------------
def make_app(tmp_path, broker, url: str):
    from hub.app import create_app
    from hub.auth import create_user

    settings = load_settings(environ={
        "POSKO_POSKO_STATE_DIR": str(tmp_path / "var"), "POSKO_MQTT_PORT": str(broker.port),
        "POSKO_MQTT_TOPIC_ROOT": f"test/{uuid.uuid4().hex[:8]}/posko/v1",
        "POSKO_HUB_PAGE_SIZE": "50"})
    app = create_app({"POSKO_SETTINGS": settings, "DATABASE_URL": url,
                      "AUTO_MIGRATE": True, "WTF_CSRF_ENABLED": False, "TESTING": True})
    with app.extensions["posko_db"].writer() as session:
        from hub.models import User

        if session.scalar(select(User.id).where(User.username == "op")) is None:
            for name, role in (("op", "operator"), ("op2", "operator"), ("sup", "supervisor"), ("adm", "admin")):
                create_user(session, name, PASSWORD, role, f"Bripka {name}")
    return app


@pytest.fixture
def hub_app(tmp_path, broker):
    return make_app(tmp_path, broker, f"sqlite:///{tmp_path / 'hub.db'}")


@pytest.mark.postgres
def test_queue_search_sort_and_export_on_postgresql(pg_server, broker, tmp_path):
    app = make_app(tmp_path, broker, pg_server)
    tag = uuid.uuid4().hex[:6]
    plain, sharp = add_reports(
        app, report_body(description=f"Dompet hilang {tag}", category="kehilangan", location={"text": "alun-alun"}),
        report_body(description=f"ada PISAU {tag}", category="gangguan", location={"text": "Terminal"}))
    op = login(app, "op")
    assert rows(op.get(f"/laporan?q={tag}").get_data(as_text=True)) == [sharp["id"], plain["id"]]
    assert rows(op.get(f"/laporan?q=pisau+{tag.upper()}").get_data(as_text=True)) == [sharp["id"]]
    for key in SORT_KEYS:
        for direction in ("asc", "desc"):
            assert op.get(f"/laporan?q={tag}&sort={key}&dir={direction}").status_code == 200
    assert rows(op.get(f"/laporan?q={tag}&sort=lokasi&dir=asc").get_data(as_text=True)) == [plain["id"], sharp["id"]]
    age(app, sharp["id"], 20)
    assert rows(op.get(f"/laporan?q={tag}&overdue=1").get_data(as_text=True)) == [sharp["id"]]
    table = op.get(f"/laporan/ekspor.csv?q={tag}").get_data(as_text=True)
    assert table.count("\r\n") == 3


def login(app, name: str):
    client = app.test_client()
    response = client.post("/masuk", data={"username": name, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    return client


def add_reports(app, *bodies) -> list[dict]:
    """Reports through the real intake (one unit), returned as sent."""
    from hub import intake, units
    from hub.models import Unit

    with app.extensions["posko_db"].writer() as db:
        unit = db.get(Unit, "kiosk-uji")
        if unit is None:
            code = units.add_unit(db, "kiosk-uji", "Posko Alun-alun", 24)
            units.enrol(db, "kiosk-uji", code)
            unit = db.get(Unit, "kiosk-uji")
        for body in bodies:
            status, answer = intake.submit_report(db, unit, body)
            assert status == 201, answer
    return list(bodies)


def age(app, report_id: str, minutes: int) -> None:
    """Make a report look `minutes` old (received and happened then)."""
    from hub.models import Report

    with app.extensions["posko_db"].writer() as db:
        report = db.get(Report, report_id)
        report.received_at = report.received_at - dt.timedelta(minutes=minutes)
        report.occurred_at = report.occurred_at - dt.timedelta(minutes=minutes)
        db.commit()


def rows(html: str) -> list[str]:
    """Report ids of the queue's rows, in order."""
    import re

    return re.findall(r'<tr data-report-id="([0-9a-f-]+)"', html)


SORT_KEYS = ("tiket", "diterima", "umur", "kategori", "uraian", "lokasi", "unit", "status", "petugas", "tingkat")


def row_class(row_html: str) -> str:
    import re

    return re.search(r'class="([^"]*)"', row_html).group(1)


def test_intake_sets_severity_once(hub_app):
    from hub.models import Report

    high, plain = add_reports(hub_app, report_body(description="korban berdarah di jalan", category="kecelakaan"),
                              report_body(description="dompet hilang", category="kehilangan"))
    with hub_app.extensions["posko_db"].writer() as db:
        assert db.get(Report, high["id"]).severity == "high"
        assert db.get(Report, plain["id"]).severity == "normal"


def test_queue_sorts_severity_first_and_by_any_column(hub_app):
    normal, high, medium = add_reports(
        hub_app,
        report_body(description="dompet hilang", category="kehilangan", location={"text": "Alun-alun"}),
        report_body(description="ada yang bawa pisau", category="gangguan", location={"text": "Terminal"}),
        report_body(description="tabrakan ringan", category="kecelakaan", location={"text": "Bundaran"}))
    op = login(hub_app, "op")
    page = op.get("/laporan").get_data(as_text=True)
    assert rows(page) == [high["id"], medium["id"], normal["id"]]
    assert 'class="sev sev-high"' in page and "Tinggi" in page
    by_place = rows(op.get("/laporan?sort=lokasi&dir=asc").get_data(as_text=True))
    assert by_place == [normal["id"], medium["id"], high["id"]]  # Alun-alun, Bundaran, Terminal
    assert rows(op.get("/laporan?sort=lokasi&dir=desc").get_data(as_text=True)) == by_place[::-1]
    age(hub_app, normal["id"], 30)
    assert rows(op.get("/laporan?sort=umur").get_data(as_text=True))[0] == normal["id"]  # oldest first
    for key in SORT_KEYS:
        for direction in ("asc", "desc"):
            got = op.get(f"/laporan?sort={key}&dir={direction}")
            assert got.status_code == 200 and len(rows(got.get_data(as_text=True))) == 3
    assert rows(op.get("/laporan?sort=bogus").get_data(as_text=True))[0] == high["id"]


def test_full_text_search(hub_app):
    motor, dompet = add_reports(
        hub_app, report_body(description="Motor Beat hitam plat G 1234 XY hilang"),
        report_body(description="dompet coklat tertinggal", location={"text": "Masjid Agung"}))
    op = login(hub_app, "op")
    assert rows(op.get("/laporan?q=beat+hitam").get_data(as_text=True)) == [motor["id"]]
    assert rows(op.get("/laporan?q=MASJID").get_data(as_text=True)) == [dompet["id"]]
    ticket = dompet["ticket"]
    assert rows(op.get(f"/laporan?q={ticket[:4]}-{ticket[4:]}").get_data(as_text=True)) == [dompet["id"]]
    none = op.get("/laporan?q=beat+masjid").get_data(as_text=True)  # every word must match
    assert rows(none) == [] and "Tidak ada laporan yang cocok" in none
    assert rows(op.get("/laporan?q=100%25").get_data(as_text=True)) == []  # % is a literal


def test_age_overdue_assignee_mine_and_duplicates(hub_app):
    from hub.models import User

    fire, theft, theft_again = add_reports(
        hub_app, report_body(description="gudang terbakar", category="bencana", location={"text": "Gudang Pelabuhan"}),
        report_body(description="helm hilang", location={"text": "Parkiran Pasar"}),
        report_body(description="helm saya juga hilang", location={"text": "parkiran pasar"}))
    age(hub_app, fire["id"], 20)  # past the 15 minutes of a high report
    op = login(hub_app, "op")
    with hub_app.extensions["posko_db"].writer() as db:
        op_id = db.scalar(select(User.id).where(User.username == "op"))
    assert op.post(f"/laporan/{theft['id']}/tugas", data={"user_id": str(op_id)}).status_code == 303
    page = op.get("/laporan").get_data(as_text=True)
    fire_row = page[page.index(f'data-report-id="{fire["id"]}"'):]
    fire_row = fire_row[:fire_row.index("</tr>")]
    assert "overdue" in row_class(fire_row) and "20 mnt" in fire_row
    theft_row = page[page.index(f'data-report-id="{theft["id"]}"'):]
    theft_row = theft_row[:theft_row.index("</tr>")]
    assert "Bripka op" in theft_row and "mungkin ganda" in theft_row
    assert f"{theft_again['ticket'][:4]}-{theft_again['ticket'][4:]}" in theft_row
    assert "overdue" not in row_class(theft_row) and "duplicate" in row_class(theft_row)
    assert rows(op.get("/laporan?mine=1").get_data(as_text=True)) == [theft["id"]]
    assert rows(login(hub_app, "op2").get("/laporan?mine=1").get_data(as_text=True)) == []
    assert rows(op.get("/laporan?overdue=1").get_data(as_text=True)) == [fire["id"]]
    assert "j</kbd>" in page and "<kbd>v</kbd>" in page  # the shortcuts are listed on the page


def test_notes_thread_apart_from_audit_and_public_note_follows_state(hub_app):
    (body,) = add_reports(hub_app, report_body())
    op = login(hub_app, "op")
    url = f"/laporan/{body['id']}"
    assert op.post(f"{url}/catatan", data={"text": "Sudah ditelepon, korban menunggu di posko"}).status_code == 303
    assert op.post(f"{url}/catatan", data={"text": "  "}).status_code == 400
    page = op.get(url).get_data(as_text=True)
    notes = page[page.index('id="notes"'):page.index("</ol>", page.index('id="notes"'))]
    audit = page[page.index('id="audit"'):]
    assert "korban menunggu" in notes and "korban menunggu" not in audit
    assert "catatan ditambahkan" in audit
    # the note a resident reads follows the state: selesai no longer asks them to wait
    for state in ("diverifikasi", "ditindaklanjuti", "selesai"):
        assert op.post(f"{url}/status", data={"state": state}).status_code == 303
    ticket = hub_app.test_client().get(f"/api/v1/tickets/{body['ticket']}?pin={body['pin']}").get_json()
    assert ticket["state"] == "selesai" and "selesai" in ticket["note"] and "tunggu" not in ticket["note"]
    assert op.post(f"{url}/catatan-publik", data={"template": "1"}).status_code == 303
    ticket = hub_app.test_client().get(f"/api/v1/tickets/{body['ticket']}?pin={body['pin']}").get_json()
    assert "KTP" in ticket["note"]
    assert op.post(f"{url}/catatan-publik", data={"template": "sendiri", "text": "Motor ada di Polsek"}).status_code == 303
    assert "Motor ada di Polsek" in op.get(url).get_data(as_text=True)
    assert op.post(f"{url}/catatan-publik", data={"template": "9"}).status_code == 400


def test_revealed_phone_stays_for_the_view_as_tel_link(hub_app):
    (body,) = add_reports(hub_app, report_body())
    sup = login(hub_app, "sup")
    url = f"/laporan/{body['id']}"
    assert "+628123456789" not in sup.get(url).get_data(as_text=True)
    assert sup.post(f"{url}/pelapor").status_code == 303
    page = sup.get(url).get_data(as_text=True)
    assert 'href="tel:+628123456789"' in page
    sup.post(f"{url}/catatan", data={"text": "ditelepon"})  # another action on the same report
    page = sup.get(url).get_data(as_text=True)
    assert 'href="tel:+628123456789"' in page and page.count('data-action="lihat_pelapor"') == 1
    sup.get("/armada")  # leaving the report hides it again
    assert "+628123456789" not in sup.get(url).get_data(as_text=True)
    sup.post(f"{url}/pelapor")
    assert sup.get(f"{url}/baris").status_code == 200  # the live row fetch is not leaving
    assert "+628123456789" in sup.get(url).get_data(as_text=True)
    sup.get("/laporan")
    assert "+628123456789" not in sup.get(url).get_data(as_text=True)
    assert login(hub_app, "op").post(f"{url}/pelapor").status_code == 403


def test_third_prank_blocks_the_number_and_says_so(hub_app):
    pranks = add_reports(hub_app, *(report_body() for _ in range(3)))
    sup = login(hub_app, "sup")
    first = sup.get(f"/laporan/{pranks[0]['id']}").get_data(as_text=True)
    assert "laporan palsu ke-1" in first and "data-confirm=" in first
    for body in pranks[:2]:
        sup.post(f"/laporan/{body['id']}/status", data={"state": "ditolak", "reason": "laporan palsu"})
    third = sup.get(f"/laporan/{pranks[2]['id']}").get_data(as_text=True)
    assert "laporan palsu ke-3" in third and "akan DIBLOKIR" in third  # said before confirming
    done = sup.post(f"/laporan/{pranks[2]['id']}/status",
                    data={"state": "ditolak", "reason": "laporan palsu"}, follow_redirects=True)
    assert "Nomor pelapor kini DIBLOKIR" in done.get_data(as_text=True)  # and when it happens
    from hub import intake

    with hub_app.extensions["posko_db"].writer() as db:  # the next report from it is refused
        assert intake.phone_is_blocked(db, "+628123456789")


def test_verify_answers_json_for_the_v_key(hub_app):
    (body,) = add_reports(hub_app, report_body())
    op = login(hub_app, "op")
    ok = op.post(f"/laporan/{body['id']}/status", data={"state": "diverifikasi"},
                 headers={"Accept": "application/json"})
    assert ok.status_code == 200 and ok.get_json()["state"] == "diverifikasi"
    again = op.post(f"/laporan/{body['id']}/status", data={"state": "diverifikasi"},
                    headers={"Accept": "application/json"})
    assert again.status_code == 409 and "Diverifikasi" in again.get_json()["message"]


def _audit_exports(app):
    from hub.models import AuditEntry

    with app.extensions["posko_db"].writer() as db:
        return [(e.actor, e.detail) for e in db.scalars(select(AuditEntry).where(AuditEntry.action == "ekspor")
                                                        .order_by(AuditEntry.id))]


def test_export_csv_and_geojson_of_the_filtered_queue(hub_app):
    motor, _other, no_position = add_reports(
        hub_app, report_body(description="=HYPERLINK(\"http://x\") motor hilang"),
        report_body(description="dompet hilang", category="kehilangan"),
        report_body(description="motor kedua", location={"text": "Pasar"}))
    op = login(hub_app, "op")
    got = op.get("/laporan/ekspor.csv?q=motor&category=pencurian")
    assert got.status_code == 200 and got.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(got.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(table) == 2 and "telepon_pelapor" not in table[0] and "+62" not in got.get_data(as_text=True)
    assert {r["tiket"] for r in table} == {f"{b['ticket'][:4]}-{b['ticket'][4:]}" for b in (motor, no_position)}
    assert any(r["uraian"].startswith("'=HYPERLINK") for r in table)  # no formula runs in a spreadsheet
    sup = login(hub_app, "sup")
    table = list(csv.DictReader(io.StringIO(sup.get("/laporan/ekspor.csv?q=motor").get_data(as_text=True)
                                            .lstrip("\ufeff"))))
    assert {r["telepon_pelapor"] for r in table} == {"+628123456789"}
    geo = json.loads(sup.get("/laporan/ekspor.geojson?q=motor").get_data(as_text=True))
    assert [f["geometry"]["coordinates"] for f in geo["features"]] == [[109.73, -6.9]]  # [lon, lat]
    assert geo["features"][0]["properties"]["telepon_pelapor"] == "+628123456789"
    exports = _audit_exports(hub_app)
    assert exports[0][0] == "op" and "CSV: 2 laporan" in exports[0][1]
    assert "q=motor" in exports[0][1] and "category=pencurian" in exports[0][1] and "tanpa data pelapor" in exports[0][1]
    assert exports[1][0] == "sup" and "dengan data pelapor" in exports[1][1]
    assert exports[2][0] == "sup" and exports[2][1].startswith("GEOJSON: 1 laporan")
    trail = sup.get("/jejak-audit?action=ekspor").get_data(as_text=True)  # supervisors read it
    assert trail.count('data-action="ekspor"') == 3 and "q=motor" in trail
    assert op.get("/jejak-audit").status_code == 403


# --- tiles and the map -------------------------------------------------------------------
def make_mbtiles(path, colours=((0, 0, 0, (40, 120, 200)), (1, 0, 0, (200, 60, 40)))) -> str:
    """A tiny MBTiles file: one 256 px PNG tile per (z, x, y as Leaflet counts) given; its SHA-256."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    conn.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
    conn.executemany("INSERT INTO metadata VALUES (?, ?)", [
        ("name", "Uji Batang"), ("format", "png"), ("bounds", "109.6,-7.0,109.8,-6.8"),
        ("attribution", "ubin uji")])
    for z, x, y, rgb in colours:
        out = io.BytesIO()
        Image.new("RGB", (256, 256), rgb).save(out, "PNG")
        conn.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, (2 ** z - 1) - y, out.getvalue()))
    conn.commit()
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiles_install_checks_digest_and_format(tmp_path):
    source = tmp_path / "batang.mbtiles"
    digest = make_mbtiles(source)
    dest = tmp_path / "hub" / "tiles.mbtiles"
    with pytest.raises(tiles.TilesError, match="SHA-256"):
        tiles.install(str(source), "0" * 64, dest)
    assert not dest.exists() and list((tmp_path / "hub").iterdir()) == []  # nothing half-installed
    junk = tmp_path / "junk.mbtiles"
    junk.write_bytes(b"not sqlite at all" * 10)
    with pytest.raises(tiles.TilesError, match="not an MBTiles"):
        tiles.install(str(junk), hashlib.sha256(junk.read_bytes()).hexdigest(), dest)
    with pytest.raises(tiles.TilesError, match="64 hexadecimal"):
        tiles.install(str(source), "abc", dest)
    tileset = tiles.install(str(source), digest.upper(), dest)
    assert (tileset.name, tileset.minzoom, tileset.maxzoom) == ("Uji Batang", 0, 1)
    assert tileset.bounds == (109.6, -7.0, 109.8, -6.8)
    top = tiles.read_tile(dest, 1, 0, 0)  # Leaflet's row 0 is the north: TMS row 1
    assert Image.open(io.BytesIO(top)).getpixel((5, 5)) == (200, 60, 40)
    assert tiles.read_tile(dest, 1, 1, 1) is None and tiles.read_tile(dest, 1, 5, 0) is None


def test_tiles_install_from_url(tmp_path):
    import threading
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    source = tmp_path / "served" / "batang.mbtiles"
    source.parent.mkdir()
    digest = make_mbtiles(source)

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(source.parent), **kw)

        def log_message(self, *_a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/batang.mbtiles"
        dest = tmp_path / "tiles.mbtiles"
        assert tiles.install(url, digest, dest).name == "Uji Batang"
        with pytest.raises(tiles.TilesError, match="HTTP 404"):
            tiles.install(url + ".missing", digest, tmp_path / "other.mbtiles")
    finally:
        server.shutdown()


def test_map_data_tiles_and_posko_positions(hub_app, tmp_path):
    (body,) = add_reports(hub_app, report_body(description="korban luka", category="kecelakaan"))
    op = login(hub_app, "op")
    page = op.get("/peta").get_data(as_text=True)
    assert 'data-tiles="0"' in page and "latar polos" in page and "vendor/leaflet/leaflet.js" in page
    assert op.get("/peta/ubin/0/0/0").status_code == 404
    adm = login(hub_app, "adm")
    bad = adm.post("/peta/posko", data={"unit_id": "kiosk-uji", "lat": "utara", "lon": "1"})
    assert bad.status_code == 400 and "Lintang" in bad.get_data(as_text=True)
    bad = adm.post("/peta/posko", data={"unit_id": "kiosk-uji", "lat": "-6.9", "lon": "200"})
    assert bad.status_code == 400 and "Bujur" in bad.get_data(as_text=True)
    assert adm.post("/peta/posko", data={"unit_id": "nope", "lat": "1", "lon": "1"}).status_code == 404
    assert op.post("/peta/posko", data={"unit_id": "kiosk-uji", "lat": "1", "lon": "1"}).status_code == 403
    assert adm.post("/peta/posko", data={"unit_id": "kiosk-uji", "lat": "-6,9075", "lon": "109.73"}).status_code == 303
    data = op.get("/peta/data.json").get_json()
    assert data["poskos"] == [{"id": "kiosk-uji", "name": "Posko Alun-alun", "lat": -6.9075, "lon": 109.73}]
    assert [(r["id"], r["severity"]) for r in data["reports"]] == [(body["id"], "high")]
    assert op.get("/peta/data.json?category=bencana").get_json()["reports"] == []  # queue filters apply
    settings = hub_app.config["POSKO_SETTINGS"]
    digest = make_mbtiles(tmp_path / "t.mbtiles")
    tiles.install(str(tmp_path / "t.mbtiles"), digest, tiles.tiles_path(settings))
    page = op.get("/peta").get_data(as_text=True)
    assert 'data-tiles="1"' in page and "Uji Batang" in page
    tile = op.get("/peta/ubin/0/0/0")
    assert tile.status_code == 200 and tile.mimetype == "image/png"
    assert hub_app.test_client().get("/peta/ubin/0/0/0").status_code in (302, 401)  # officers only


def test_tiles_command_line(tmp_path):
    from click.testing import CliRunner

    from hub.cli import hub

    source = tmp_path / "batang.mbtiles"
    digest = make_mbtiles(source)
    env = {"POSKO_POSKO_STATE_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    refused = runner.invoke(hub, ["tiles", "install", str(source), "--sha256", "1" * 64], env=env)
    assert refused.exit_code != 0 and "SHA-256" in refused.output
    done = runner.invoke(hub, ["tiles", "install", str(source), "--sha256", digest], env=env)
    assert done.exit_code == 0, done.output
    assert (tmp_path / "var" / "hub" / "tiles.mbtiles").is_file()
    assert "Uji Batang" in runner.invoke(hub, ["tiles", "status"], env=env).output


# --- talk groups and times ---------------------------------------------------------------
def test_talkgroup_page_lists_groups_that_have_recordings(hub_app):
    from tests.gateway.test_hub_talkgroups import save_recording

    save_recording(hub_app, group="batang-kota", unit="pos-dewi")
    sup = login(hub_app, "sup")
    page = sup.get("/grup-bicara").get_data(as_text=True)
    assert "Belum ada grup bicara" not in page
    assert 'data-group="batang-kota"' in page and "belum terdaftar di hub" in page and "1 rekaman" in page
    assert sup.post("/grup-bicara/tambah", data={"group_id": "batang-kota"}).status_code == 303
    page = sup.get("/grup-bicara").get_data(as_text=True)
    assert "belum terdaftar di hub" not in page and "1 rekaman" in page
    sup.post("/grup-bicara/tambah", data={"group_id": "ojol-batang"})  # registered, no recordings
    recordings = sup.get("/grup-bicara/rekaman").get_data(as_text=True)
    assert 'value="ojol-batang"' in recordings and 'value="batang-kota"' in recordings


def test_recordings_and_pages_label_times_in_the_display_zone(hub_app):
    from hub.timefmt import zone_label
    from tests.gateway.test_hub_talkgroups import save_recording

    rec = save_recording(hub_app)
    op = login(hub_app, "op")
    page = op.get("/grup-bicara/rekaman").get_data(as_text=True)
    wib = dt.datetime.fromtimestamp(rec.start, dt.timezone(dt.timedelta(hours=7)))
    assert wib.strftime("%d-%m-%Y %H:%M:%S") in page and "Waktu (WIB)" in page and " UTC" not in page
    (body,) = add_reports(hub_app, report_body())
    assert "(WIB)" in op.get("/laporan").get_data(as_text=True)
    assert " WIB" in op.get(f"/laporan/{body['id']}").get_data(as_text=True)
    assert [zone_label(z) for z in ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")] == ["WIB", "WITA", "WIT"]


def test_migration_gives_old_reports_severity_and_their_notes_a_thread(tmp_path):
    """A database of the release before: 0104 backfills severity and copies old notes."""
    import sqlalchemy as sa
    from alembic import command

    from hub.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0101_talkgroups")
    engine = sa.create_engine(url)
    now = dt.datetime(2026, 12, 24, 14, 10)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO units (id, name, created_at, status, version, uptime_s, disk_free_mb, "
                             "outbox_pending, outbox_oldest_s, models, talk_group, interval_s) VALUES "
                             "('k1', 'Posko', :t, 'unknown', '', 0, 0, 0, 0, '{}', '', 30)"), {"t": now})
        for rid, text in (("r-fire", "rumah terbakar"), ("r-plain", "dompet hilang")):
            conn.execute(sa.text(
                "INSERT INTO reports (id, unit_id, ticket, pin_hash, body_hash, category, description, occurred_at, "
                "location_text, reporter_name, reporter_phone, photos, state, reject_reason, public_note, "
                "received_at, updated_at) VALUES (:id, 'k1', :ticket, 'x', 'y', 'lainnya', :d, :t, 'Pasar', '', '', "
                "'[]', 'baru', '', '', :t, :t)"), {"id": rid, "ticket": rid[-4:].upper().ljust(8, "X"), "d": text,
                                                  "t": now})
        conn.execute(sa.text("INSERT INTO audit (report_id, actor, action, detail, at) VALUES "
                             "('r-fire', 'aziz', 'catatan', 'sudah ditelepon', :t)"), {"t": now})
    upgrade(url)
    with engine.connect() as conn:
        levels = dict(conn.execute(sa.text("SELECT id, severity FROM reports")).all())
        notes = conn.execute(sa.text("SELECT report_id, author, text FROM report_notes")).all()
    engine.dispose()
    assert levels == {"r-fire": "high", "r-plain": "normal"}
    assert [tuple(n) for n in notes] == [("r-fire", "aziz", "sudah ditelepon")]
