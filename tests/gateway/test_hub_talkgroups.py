"""The hub's talk-group pages: groups and members, recordings played in the browser, and the
command center taking the floor over a talking unit."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect

from gateway.recorder import Recorder
from gateway.recordings import resolve_folder
from posko.config import load_settings
from tests.gateway.conftest import EndlessSource, wait_until
from tests.gateway.test_recorder import encode_spurt

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]

PASSWORD = "kata-sandi-uji-123"


@pytest.fixture
def hub_app(tmp_path, mqtt_settings):
    from hub.app import create_app
    from hub.auth import create_user

    settings = load_settings(environ={
        "POSKO_POSKO_STATE_DIR": str(tmp_path / "var"), "POSKO_MQTT_PORT": str(mqtt_settings.port),
        "POSKO_MQTT_TOPIC_ROOT": mqtt_settings.topic_root})
    app = create_app({"POSKO_SETTINGS": settings, "DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
                      "AUTO_MIGRATE": True, "WTF_CSRF_ENABLED": False, "TESTING": True})
    with app.extensions["posko_db"].writer() as session:
        for name, role in (("op", "operator"), ("sup", "supervisor"), ("adm", "admin")):
            create_user(session, name, PASSWORD, role)
    return app


def login(app, name: str):
    client = app.test_client()
    response = client.post("/masuk", data={"username": name, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    return client


def save_recording(app, group: str = "batang-kota", unit: str = "pos-dewi", frames: int = 100):
    settings = app.config["POSKO_SETTINGS"]
    rec = Recorder(resolve_folder(settings.state_dir, settings.ptt.recordings_dir))
    result = None
    for f in encode_spurt(frames, spurt=0x1234 + frames):
        result = rec.add(group, unit, f) or result
    return result


def test_talkgroup_tables_live_on_their_own_branch(hub_app) -> None:
    names = inspect(hub_app.extensions["posko_db"].engine).get_table_names()
    assert {"talk_groups", "talk_group_members", "units"} <= set(names)


def test_supervisors_manage_groups_and_bad_input_names_the_field(hub_app) -> None:
    sup = login(hub_app, "sup")
    r = sup.post("/grup-bicara/tambah", data={"group_id": "batang-kota", "name": "Batang Kota"})
    assert r.status_code == 303
    r = sup.post("/grup-bicara/batang-kota/anggota", data={"unit_id": "pos-dewi"})
    assert r.status_code == 303
    page = sup.get("/grup-bicara").get_data(as_text=True)
    assert "batang-kota" in page and "pos-dewi" in page and "Ambil alih saluran" in page
    bad = sup.post("/grup-bicara/tambah", data={"group_id": "batang/kota"})
    assert bad.status_code == 400 and "ID grup" in bad.get_data(as_text=True)
    dup = sup.post("/grup-bicara/tambah", data={"group_id": "batang-kota"})
    assert dup.status_code == 409 and "sudah ada" in dup.get_data(as_text=True)
    bad_unit = sup.post("/grup-bicara/batang-kota/anggota", data={"unit_id": "a#b"})
    assert bad_unit.status_code == 400 and "ID unit" in bad_unit.get_data(as_text=True)
    assert sup.post("/grup-bicara/tidak-ada/anggota", data={"unit_id": "x"}).status_code == 404
    op = login(hub_app, "op")
    assert op.post("/grup-bicara/tambah", data={"group_id": "lain"}).status_code == 403
    assert op.get("/grup-bicara/acl").status_code == 403
    acl = login(hub_app, "adm").get("/grup-bicara/acl").get_data(as_text=True)
    root = hub_app.config["POSKO_SETTINGS"].mqtt.topic_root
    assert f"topic write {root}/tg/batang-kota/audio/pos-dewi" in acl
    assert f"topic write {root}/tg/+/floor/request/command-center" in acl
    assert sup.post("/grup-bicara/batang-kota/anggota/pos-dewi/hapus").status_code == 303
    sup.get("/grup-bicara")  # shows (and so consumes) the flash message naming the unit
    assert "pos-dewi" not in sup.get("/grup-bicara").get_data(as_text=True)


def test_recordings_are_listed_by_group_and_day_and_served_as_ogg(hub_app) -> None:
    rec = save_recording(hub_app)
    save_recording(hub_app, group="ojol-batang", unit="ojol-base", frames=50)
    op = login(hub_app, "op")
    page = op.get("/grup-bicara/rekaman?group=batang-kota").get_data(as_text=True)
    assert "pos-dewi" in page and "ojol-base" not in page and "<audio" in page
    # the day filter is in the hub's display time zone (WIB), like the times listed
    day = dt.datetime.fromtimestamp(rec.start, ZoneInfo("Asia/Jakarta")).strftime("%Y-%m-%d")
    assert "ojol-base" in op.get(f"/grup-bicara/rekaman?date={day}").get_data(as_text=True)
    assert "Tidak ada rekaman" in op.get("/grup-bicara/rekaman?date=2001-01-01").get_data(as_text=True)
    bad = op.get("/grup-bicara/rekaman?date=kemarin")
    assert bad.status_code == 400 and "Tanggal" in bad.get_data(as_text=True)
    audio = op.get(f"/grup-bicara/rekaman/berkas/{rec.file}")
    assert audio.status_code == 200 and audio.mimetype == "audio/ogg"
    assert audio.get_data()[:4] == b"OggS"
    for bad_path in ("../hub.db", "batang-kota/../../hub.db", rec.file.replace(".opus", ".json")):
        assert op.get(f"/grup-bicara/rekaman/berkas/{bad_path}").status_code == 404
    assert hub_app.test_client().get("/grup-bicara/rekaman").status_code in (302, 401)


def test_command_center_takes_the_floor_from_the_dashboard(hub_app, net) -> None:
    arb = net.arbiter()
    dewi = net.unit("pos-dewi", EndlessSource)
    dewi.client.press()
    assert wait_until(lambda: arb.status()["groups"].get("batang-kota") == "pos-dewi", 3)
    sup = login(hub_app, "sup")
    sup.post("/grup-bicara/tambah", data={"group_id": "batang-kota"})
    r = sup.post("/grup-bicara/batang-kota/ambil-alih")
    assert r.status_code == 303
    assert wait_until(lambda: dewi.cuts == ["preempted"], 3)
    assert arb.status()["groups"]["batang-kota"] == "command-center"
    time.sleep(2.3)  # silent longer than the 2 s silence rule: the command center keeps it
    assert arb.status()["groups"]["batang-kota"] == "command-center"
    dewi.client.press()
    assert dewi.busy.wait(2)
    page = sup.get("/grup-bicara").get_data(as_text=True)
    assert "Lepas saluran" in page
    assert wait_until(lambda: '<b class="mono">command-center</b>' in sup.get("/grup-bicara").get_data(as_text=True), 3)
    sup.post("/grup-bicara/batang-kota/lepas")
    assert wait_until(lambda: arb.status()["groups"]["batang-kota"] == "", 3)
    for action in ("ambil-alih", "lepas"):  # a group id that is no topic level never reaches MQTT
        assert sup.post(f"/grup-bicara/bad+group/{action}").status_code == 404


@pytest.fixture
def served_hub(hub_app) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, hub_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.mark.browser
def test_pages_in_chromium_and_the_recording_plays(hub_app, served_hub, new_page, artifacts) -> None:
    save_recording(hub_app, frames=150)
    newest = save_recording(hub_app, group="ojol-batang", unit="ojol-base", frames=60)
    sup = login(hub_app, "sup")
    sup.post("/grup-bicara/tambah", data={"group_id": "batang-kota", "name": "Batang Kota"})
    sup.post("/grup-bicara/batang-kota/anggota", data={"unit_id": "pos-dewi"})
    sup.post("/grup-bicara/batang-kota/anggota", data={"unit_id": "ojol-base"})
    page = new_page(1280, 720)
    page.goto(f"{served_hub}/masuk")
    page.fill("input[name=username]", "sup")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{served_hub}/grup-bicara")
    assert page.locator("#groups tr[data-group=batang-kota]").count() == 1
    page.screenshot(path=str(artifacts / "ptt_hub_talkgroups.png"), full_page=True)
    page.goto(f"{served_hub}/grup-bicara/rekaman")
    assert page.locator("#recordings audio").count() == 2
    # Chromium decodes the hub's Ogg Opus file: its duration matches the recording's.
    duration = page.evaluate("""async () => {
        const a = document.querySelector('#recordings audio');
        a.preload = 'metadata'; a.load();
        await new Promise((ok, fail) => { a.onloadedmetadata = ok; a.onerror = fail; });
        return a.duration; }""")
    assert abs(duration - newest.duration_s) < 0.05, duration  # newest first: 1.2 s
    page.screenshot(path=str(artifacts / "ptt_hub_recordings.png"), full_page=True)
    assert page.console_errors == []
