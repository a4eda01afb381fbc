"""Enrolment by QR code and revocation, against a Mosquitto with a password file and an ACL
that the hub rewrites and reloads (SIGHUP).

A supervisor creates a member; the QR code on the hub's page is read from a screenshot (as a
phone's camera would) and opened in the phone; the phone gets its own broker login, may talk
only in its group under its own id, and after "Cabut" it is disconnected at once and can
neither log in again nor publish."""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Iterator

import pytest

from gateway.acl import render_acl
from posko.broker import BrokerConfig, MosquittoProcess, free_port, make_password_file
from tests.hub.support import HubProcess, Officer
from tests.phone.conftest import GROUP, hold, open_phone, wait_online, wait_until
from tests.support.mqtt import Client


@pytest.fixture
def secured(tmp_path, root) -> Iterator[dict]:
    """A broker with logins and an ACL (units, hub, arbiter), its WebSocket listener, and the
    files and pid file the hub manages."""
    folder = tmp_path / "broker"
    folder.mkdir()
    users = {"hub": "hub-pw", "arbiter": "arb-pw", "pos-kuta-01": "unit-pw"}
    base = make_password_file(folder / "base-passwd", users)
    passwd = folder / "passwd"
    passwd.write_text(base.read_text())
    acl = folder / "acl"
    acl.write_text(render_acl(root, members={"pos-kuta-01": [GROUP]}))
    config = BrokerConfig(state_dir=folder, port=free_port(), websockets_port=free_port(),
                          password_file=passwd, acl_file=acl, allow_anonymous=False)
    proc = MosquittoProcess(config).start()
    pid = folder / "mosquitto.pid"
    pid.write_text(str(proc.proc.pid))
    try:
        yield {"proc": proc, "base": base, "passwd": passwd, "acl": acl, "pid": pid, "users": users}
    finally:
        proc.stop()


@pytest.fixture
def managed_hub(secured, root, tmp_path) -> Iterator[HubProcess]:
    proc = secured["proc"]
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "hub",
                     mqtt_port=proc.port, topic_root=root, extra_env={
                         "POSKO_MQTT_USERNAME": "hub", "POSKO_MQTT_PASSWORD": "hub-pw",
                         "POSKO_PTT_PHONE_BROKER_URL": f"ws://{{host}}:{proc.config.websockets_port}",
                         "POSKO_PTT_BROKER_PASSWORD_BASE": str(secured["base"]),
                         "POSKO_PTT_BROKER_PASSWORD_FILE": str(secured["passwd"]),
                         "POSKO_PTT_BROKER_ACL_FILE": str(secured["acl"]),
                         "POSKO_PTT_BROKER_PID_FILE": str(secured["pid"]),
                         "POSKO_PTT_MEMBER_EXPIRY_CHECK_S": "1"}).start()
    from hub.talkgroups import TalkGroup, TalkGroupMember

    with hub.db() as db:
        db.add_all([TalkGroup(id=GROUP, name="Ojol Kuta"), TalkGroup(id="lain", name="Lain"),
                    TalkGroupMember(group_id=GROUP, unit_id="pos-kuta-01")])
        db.commit()
    try:
        yield hub
    finally:
        hub.stop()


def _read_qr(browser, svg: str) -> str:
    """What a camera reads from the QR code shown on the hub's page."""
    import zxingcpp
    from PIL import Image

    page = browser.new_page(viewport={"width": 700, "height": 700})
    page.set_content(f"<body style='margin:0;background:#fff'>{svg}</body>")
    png = page.locator("svg").screenshot()
    page.close()
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert results, "no QR code found in the screenshot"
    return results[0].text


def test_enrol_by_qr_then_revoke(browser, managed_hub, secured, root) -> None:
    hub = managed_hub
    officer = Officer(hub, *hub.add_user("supervisor"))
    bad = officer.post("/hp/anggota", {"name": "Budi", "days": "30"}, page="/hp/anggota")
    assert bad.status_code == 400 and "Grup: pilih paling sedikit satu grup" in bad.text
    created = officer.post("/hp/anggota", {"name": "Budi ojol", "groups": [GROUP], "days": "30"},
                           page="/hp/anggota")
    assert created.status_code == 201, created.text[:500]
    svg = re.search(r"<svg.*?</svg>", created.text, re.S).group(0)
    link = _read_qr(browser, svg)
    assert link.startswith(f"{hub.base}/hp/#daftar=")

    # An observer with the hub's login sees everything on the broker.
    watch = Client(secured["proc"].port, username="hub", password="hub-pw")
    assert watch.wait_connected()
    watch.subscribe(f"{root}/tg/#", qos=0)

    page = open_phone(browser, hub, None, fragment=link.split("/hp/", 1)[1])
    wait_online(page)
    cfg = json.loads(page.evaluate("localStorage.getItem('posko-hp')"))
    member = cfg["unit"]
    assert member.startswith("hp-") and cfg["groups"] == [GROUP] and "#daftar" not in page.url
    assert "Budi ojol" in page.text_content("#me")
    # The QR code works once.
    again = open_phone(browser, hub, None, fragment=link.split("/hp/", 1)[1])
    again.wait_for_selector("#notice:not([hidden])")
    # "Mendaftarkan ponsel…" shows first, then the hub's answer.
    assert wait_until(lambda: "sudah dipakai" in again.text_content("#notice"), 10), again.text_content("#notice")

    # The phone talks under its own id (the floor is taken without an arbiter here: none runs,
    # so the phone says the centre does not answer; its login and ACL are what is tested).
    _drain(watch)
    phone = Client(secured["proc"].port, username=member, password=cfg["password"])
    assert phone.wait_connected()
    phone.publish(f"{root}/tg/{GROUP}/floor/request/{member}", json.dumps({"action": "request", "spurt": 7}))
    phone.publish(f"{root}/tg/lain/floor/request/{member}", json.dumps({"action": "request", "spurt": 8}))
    phone.publish(f"{root}/tg/{GROUP}/floor/request/pos-kuta-01", json.dumps({"action": "request", "spurt": 9}))
    seen = _drain(watch, 1.5)
    assert f"{root}/tg/{GROUP}/floor/request/{member}" in seen
    assert f"{root}/tg/lain/floor/request/{member}" not in seen, "a member talked outside their groups"
    assert f"{root}/tg/{GROUP}/floor/request/pos-kuta-01" not in seen, "a member spoke under another id"

    # Revoke: the hub rewrites the files and reloads the broker; the phone drops at once.
    rows = officer.get("/hp/anggota").text
    assert f'data-member="{member}" data-status="enrolled"' in rows
    revoked = officer.post(f"/hp/anggota/{member}/cabut", page="/hp/anggota", allow_redirects=False)
    assert revoked.status_code == 303, revoked.text[:300]
    page.wait_for_selector("#conn[data-state='offline']", timeout=10000)
    assert member not in secured["passwd"].read_text()
    assert member not in secured["acl"].read_text()
    _drain(watch)
    phone.publish(f"{root}/tg/{GROUP}/floor/request/{member}", json.dumps({"action": "request", "spurt": 10}), qos=0)
    hold(page, 0.5)
    time.sleep(3)  # the phone retries its connection meanwhile (refused)
    assert f"{root}/tg/{GROUP}/floor/request/{member}" not in _drain(watch, 1.0)
    assert page.get_attribute("#conn", "data-state") == "offline"
    retry = Client(secured["proc"].port, username=member, password=cfg["password"],
                   client_id=f"again-{uuid.uuid4().hex[:6]}")
    assert not retry.wait_connected(3), "a revoked member logged in again"
    assert f'data-member="{member}" data-status="revoked"' in officer.get("/hp/anggota").text
    for c in (watch, phone, retry):
        c.close()


def _drain(client: Client, wait_s: float = 0.3) -> list[str]:
    time.sleep(wait_s)
    topics = []
    while not client.messages.empty():
        topics.append(client.messages.get_nowait().topic)
    return topics


def test_member_form_names_the_field(browser, managed_hub) -> None:
    officer = Officer(managed_hub, *managed_hub.add_user("supervisor"))
    r = officer.post("/hp/anggota", {"name": "", "groups": [GROUP]}, page="/hp/anggota")
    assert r.status_code == 400 and "Nama:" in r.text
    r = officer.post("/hp/anggota", {"name": "X", "groups": ["tidak-ada"]}, page="/hp/anggota")
    assert r.status_code == 400 and "grup tidak dikenal: tidak-ada" in r.text
    r = officer.post("/hp/anggota", {"name": "X", "groups": [GROUP], "days": "0"}, page="/hp/anggota")
    assert r.status_code == 400 and "Berlaku (hari)" in r.text
    operator = Officer(managed_hub, *managed_hub.add_user("operator"))
    assert operator.get("/hp/anggota").status_code == 403


def _enrol(officer: Officer, hub: HubProcess, name: str) -> dict:
    """A member created on the hub and enrolled as its phone would (the redeem API)."""
    import requests

    created = officer.post("/hp/anggota", {"name": name, "groups": [GROUP], "days": "30"}, page="/hp/anggota")
    assert created.status_code == 201, created.text[:300]
    token = re.search(r"#daftar=([\w-]+)", created.text).group(1)
    answer = requests.post(f"{hub.base}/hp/api/daftar", json={"token": token}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_member_raises_alerts_only_under_its_own_id(managed_hub, secured, root) -> None:
    """The broker takes a member's alert on `alert/{own id}` and refuses one forged under
    another member's id or a unit's; the member hears only its own alerts' acks."""
    officer = Officer(managed_hub, *managed_hub.add_user("supervisor"))
    budi, sari = _enrol(officer, managed_hub, "Budi"), _enrol(officer, managed_hub, "Sari")
    watch = Client(secured["proc"].port, username="hub", password="hub-pw")
    assert watch.wait_connected()
    watch.subscribe(f"{root}/alert/#", qos=1)
    phone = Client(secured["proc"].port, username=budi["unit"], password=budi["password"])
    assert phone.wait_connected()
    phone.subscribe(f"{root}/alert/{budi['unit']}/ack")
    phone.subscribe(f"{root}/alert/{sari['unit']}/ack")
    _drain(watch)
    body = json.dumps({"id": str(uuid.uuid4()), "unit": budi["unit"], "source": "phone_emergency",
                       "time": time.time()})
    for target in (budi["unit"], sari["unit"], "pos-kuta-01"):
        phone.publish(f"{root}/alert/{target}", body, qos=1)
    seen = _drain(watch, 1.5)
    assert f"{root}/alert/{budi['unit']}" in seen
    assert f"{root}/alert/{sari['unit']}" not in seen, "a member raised an alert as another member"
    assert f"{root}/alert/pos-kuta-01" not in seen, "a member raised an alert as a unit"
    # The hub answers on each member's ack topic; Budi hears only his own.
    _drain(phone)
    for member in (budi, sari):
        watch.publish(f"{root}/alert/{member['unit']}/ack",
                      json.dumps({"alert_id": "x", "officer": "", "time": 1.0, "stage": "received"}))
    heard = _drain(phone, 1.0)
    assert f"{root}/alert/{budi['unit']}/ack" in heard
    assert f"{root}/alert/{sari['unit']}/ack" not in heard, "a member read another member's acks"
    for c in (watch, phone):
        c.close()


def test_an_expired_member_is_cut_off_by_itself(managed_hub, secured, root) -> None:
    """No officer does anything: once a member's validity has run out, the hub's ingest
    rewrites the broker files without them and reloads Mosquitto, which drops the phone."""
    import datetime as dt

    from hub.models import utcnow
    from hub.phone import PhoneMember

    officer = Officer(managed_hub, *managed_hub.add_user("supervisor"))
    budi, sari = _enrol(officer, managed_hub, "Budi"), _enrol(officer, managed_hub, "Sari")
    phone = Client(secured["proc"].port, username=budi["unit"], password=budi["password"])
    other = Client(secured["proc"].port, username=sari["unit"], password=sari["password"])
    assert phone.wait_connected() and other.wait_connected()
    time.sleep(2.5)  # a few expiry checks with nothing expired: the broker is left alone
    assert phone.disconnects == 0 and other.disconnects == 0
    before = secured["passwd"].stat().st_mtime_ns
    with managed_hub.db() as db:
        db.get(PhoneMember, budi["unit"]).expires_at = utcnow() + dt.timedelta(seconds=2)
        db.commit()
    assert budi["unit"] in secured["passwd"].read_text()
    assert wait_until(lambda: phone.disconnects > 0, 15), "the expired member is still connected"
    assert budi["unit"] not in secured["passwd"].read_text()
    assert budi["unit"] not in secured["acl"].read_text()
    assert sari["unit"] in secured["passwd"].read_text() and other.disconnects == 0
    assert secured["passwd"].stat().st_mtime_ns != before
    retry = Client(secured["proc"].port, username=budi["unit"], password=budi["password"],
                   client_id=f"again-{uuid.uuid4().hex[:6]}")
    assert not retry.wait_connected(3), "an expired member logged in again"
    assert f'data-member="{budi["unit"]}" data-status="expired"' in officer.get("/hp/anggota").text
    for c in (phone, other, retry):
        c.close()
