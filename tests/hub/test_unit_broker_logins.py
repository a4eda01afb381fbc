"""A unit's login at the central broker, made by the hub: two real Mosquittos from the generated
configurations (a unit's broker bridged over TLS to the central one), the real hub app
rewriting the central password file and reloading it (SIGHUP, never a restart), the unit's
real enrolment, login keeper (firmware/broker_login.py) and bridge tool (firmware/bridge_conf.py,
what posko-bridge-login.path runs as root).

Enrolment gives the bridge its login (an alert crosses); a rotation refuses the old password
at once and the unit's keeper fetches the new one, after which the bridge comes back; the
central broker's PID never changes; a revoked unit's bridge is cut off."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from firmware import bridge_conf
from firmware.broker_login import BrokerLoginKeeper, LoginCheckError
from gateway.acl import render_local_acl, write_password_file
from posko import topics
from posko.broker import (
    MosquittoProcess,
    central_broker,
    free_port,
    make_password_file,
    unit_broker,
)
from posko.config import load_settings
from posko.enroll import broker_login_path, enrol, read_broker_login
from tests.hub.support import HubProcess, Officer
from tests.support.mqtt import Client, make_tls

pytestmark = [pytest.mark.broker, pytest.mark.timeout(240)]

ROOT = "posko/v1"


@pytest.fixture
def field(tmp_path):
    unit = f"kiosk-{uuid.uuid4().hex[:6]}"
    ca, crt, key = make_tls(tmp_path / "tls")
    central_dir, local_dir = tmp_path / "central", tmp_path / "local"
    central_dir.mkdir()
    local_dir.mkdir()
    # What setup.sh hub makes: the deployment's own logins as the base, the managed files
    # seeded from it; from then on the hub rewrites them.
    base = make_password_file(central_dir / "base-passwd", {"hub": "hub-pw", "arbiter": "arb-pw"})
    passwd, acl = central_dir / "units.passwd", central_dir / "units.acl"
    passwd.write_text(base.read_text())
    acl.write_text("user hub\ntopic readwrite posko/v1/#\n")
    central = MosquittoProcess(central_broker(
        central_dir, password_file=passwd, acl_file=acl, certfile=crt, keyfile=key,
        units_port=free_port(), local_port=free_port(), units_bind="127.0.0.1")).start()
    pid_file = central_dir / "mosquitto.pid"
    pid_file.write_text(str(central.proc.pid))
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "hub",
                     mqtt_port=central.port, topic_root=ROOT, extra_env={
                         "POSKO_MQTT_USERNAME": "hub", "POSKO_MQTT_PASSWORD": "hub-pw",
                         "POSKO_PTT_BROKER_PASSWORD_BASE": str(base),
                         "POSKO_PTT_BROKER_PASSWORD_FILE": str(passwd),
                         "POSKO_PTT_BROKER_ACL_FILE": str(acl),
                         "POSKO_PTT_BROKER_PID_FILE": str(pid_file),
                         # The ingest's periodic rewrite would mend a missed one within this
                         # long: out of the way, so every change must reload the broker itself.
                         "POSKO_PTT_MEMBER_EXPIRY_CHECK_S": "3600"}).start()
    # The unit: its settings, and its local broker's configuration as setup.sh installs it
    # (the bridge has the unit's user name and no password yet).
    settings = load_settings(environ={"POSKO_POSKO_STATE_DIR": str(local_dir / "state"),
                                      "POSKO_POSKO_UNIT_ID": unit, "POSKO_KIOSK_HUB_URL": hub.base,
                                      "POSKO_MQTT_TOPIC_ROOT": ROOT})
    (local_dir / "acl").write_text(render_local_acl(unit, ROOT))
    local_cfg = unit_broker(local_dir, unit=unit, bridge_password="", central=f"localhost:{central.config.listeners[0].port}",
                            cafile=ca, password_file=write_password_file(local_dir / "passwd", {unit: "unit-pw"}),
                            acl_file=local_dir / "acl", port=free_port(), root=ROOT)
    local = MosquittoProcess(local_cfg, keep_conf=True)
    local.conf_path.write_text(local_cfg.render())
    try:
        yield type("Field", (), {"unit": unit, "central": central, "local": local, "hub": hub, "ca": ca,
                                 "settings": settings, "passwd": passwd})
    finally:
        local.stop()
        hub.stop()
        central.stop()


class _Ctx:
    def __init__(self, settings) -> None:
        self.settings = settings


def _client(port: int, user: str, password: str, **kw) -> Client:
    client = Client(port, username=user, password=password, **kw)
    assert client.wait_connected(), f"{user} could not connect"
    return client


def _bridge_up(field, up: bool, timeout: float = 30.0) -> None:
    """Wait until the local broker says its bridge is up (or down)."""
    want = b"1" if up else b"0"
    state = _client(field.local.port, field.unit, "unit-pw")
    try:
        state.subscribe(f"$SYS/broker/connection/{field.unit}/state")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if state.expect(max(0.1, deadline - time.monotonic())).payload == want:
                    return
            except AssertionError:
                break
        raise AssertionError(f"the bridge did not go {'up' if up else 'down'}; log: {field.local.log_tail()}")
    finally:
        state.close()


def _alert_crosses(field, watch: Client) -> None:
    """An alert published on the unit's broker reaches the central one."""
    unit = _client(field.local.port, field.unit, "unit-pw")
    try:
        body = json.dumps({"id": str(uuid.uuid4()), "unit": field.unit, "source": "panic_button"})
        unit.publish(topics.alert(field.unit, ROOT), body, qos=1)
        got = watch.expect(15)
        assert got.topic == topics.alert(field.unit, ROOT) and json.loads(got.payload)["id"] in body
    finally:
        unit.close()


def _login_refused(field, password: str) -> bool:
    client = Client(field.central.config.listeners[0].port, host="localhost", username=field.unit,
                    password=password, tls_ca=field.ca)
    try:
        return not client.wait_connected(3)
    finally:
        client.close()


def test_enrolment_rotation_and_revocation_of_a_units_broker_login(field) -> None:
    central_pid = field.central.proc.pid
    with field.hub.db() as db:
        from hub.units import add_unit

        code = add_unit(db, field.unit, "Posko Jembatan", 24)

    # Enrolment: the hub's answer carries the unit's broker login; the unit keeps it (0600) and
    # the bridge tool writes it into the bridge's configuration (0640).
    enrol(field.settings, field.hub.base, code)
    login = read_broker_login(field.settings)
    assert login and login["user"] == field.unit and len(login["password"]) >= 24
    assert broker_login_path(field.settings).stat().st_mode & 0o777 == 0o600
    assert login["password"] not in field.passwd.read_text()  # the hub keeps only a hash
    assert field.passwd.read_text().count(f"{field.unit}:$7$") == 1
    assert bridge_conf.apply(broker_login_path(field.settings), field.local.conf_path)
    assert not bridge_conf.apply(broker_login_path(field.settings), field.local.conf_path)  # once is enough
    assert field.local.conf_path.stat().st_mode & 0o777 == 0o640
    assert f"remote_password {login['password']}" in field.local.conf_path.read_text()
    field.local.start()
    _bridge_up(field, True)
    watch = _client(field.central.port, "hub", "hub-pw")
    try:
        watch.subscribe(f"{ROOT}/alert/#")
        _alert_crosses(field, watch)

        keeper = BrokerLoginKeeper(interval_s=0)
        keeper.start(_Ctx(field.settings))  # interval 0: no thread, checks only when asked
        assert keeper.check_once() == "current"

        # Rotation: the old password is refused at once; the bridge is dropped.
        out = field.hub.cli("hub", "units", "rotate-broker", field.unit).stdout
        assert "old broker password refused" in out
        _bridge_up(field, False, timeout=5)
        assert _login_refused(field, login["password"])
        # The unit learns its new login over HTTPS with its token; the bridge comes back once
        # the tool has written it and the local broker restarted (posko-bridge-login.path).
        assert keeper.check_once() == "renewed"
        new = read_broker_login(field.settings)
        assert new["password"] != login["password"] and new["login"] != login["login"]
        assert bridge_conf.apply(broker_login_path(field.settings), field.local.conf_path)
        field.local.restart()
        _bridge_up(field, True)
        _alert_crosses(field, watch)
        assert keeper.check_once() == "current"
        assert _login_refused(field, login["password"])
        assert field.central.proc.pid == central_pid and field.central.proc.poll() is None

        # Revocation: the unit's bridge is cut off and its login refused; its token is gone too.
        field.hub.cli("hub", "units", "revoke", field.unit)
        _bridge_up(field, False, timeout=5)
        assert _login_refused(field, new["password"])
        assert f"{field.unit}:" not in field.passwd.read_text()
        with pytest.raises(LoginCheckError, match="401"):
            keeper.check_once()
        time.sleep(2.5)  # the bridge retries (restart_timeout 2) and stays out
        _bridge_up(field, False, timeout=3)
        assert field.central.proc.pid == central_pid and field.central.proc.poll() is None
    finally:
        watch.close()


def test_the_broker_login_api_refuses_what_it_must(field, sqlite_hub) -> None:
    import requests

    hub = field.hub
    unit, token = hub.add_unit()
    auth = {"Authorization": f"Bearer {token}"}
    api = f"{hub.base}/api/v1/broker-login"
    assert requests.get(api, timeout=10).status_code == 401
    held = requests.get(api, headers=auth, timeout=10).json()
    assert held["managed"] is True and held["user"] == unit and held["login"]  # made at enrolment
    bad = requests.post(api, headers=auth, data=b'{"user": "hub"}', timeout=10)
    assert bad.status_code == 422 and "body" in bad.json()["fields"]
    # A rotation lets the unit fetch its new login at once; a second one right after is refused
    # (every new login rewrites and reloads the central broker).
    hub.cli("hub", "units", "rotate-broker", unit)
    assert requests.get(api, headers=auth, timeout=10).json()["login"] is None
    first = requests.post(api, headers=auth, timeout=10)
    assert first.status_code == 200 and first.json()["user"] == unit
    assert requests.get(api, headers=auth, timeout=10).json()["login"] == first.json()["login"]
    again = requests.post(api, headers=auth, timeout=10)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1
    # A unit cannot take the name of the deployment's own users: the base entry wins.
    assert field.passwd.read_text().count("hub:") == 1
    # The fleet page's button does what the command does, for admins only.
    operator = Officer(hub, *hub.add_user("operator"))
    admin = Officer(hub, *hub.add_user("admin"))
    assert "Ganti sandi broker" in admin.get("/armada/tabel").text
    denied = operator.post(f"/armada/{unit}/sandi-broker", page="/armada", allow_redirects=False)
    assert denied.status_code == 403
    assert requests.get(api, headers=auth, timeout=10).json()["login"] == first.json()["login"]
    done = admin.post(f"/armada/{unit}/sandi-broker", page="/armada", allow_redirects=False)
    assert done.status_code == 303, done.text[:300]
    assert requests.get(api, headers=auth, timeout=10).json()["login"] is None
    assert f"{unit}:" not in field.passwd.read_text()
    assert "sandi lama ditolak" in admin.get("/armada").text

    # A hub that does not manage broker logins says so; enrolment works without one.
    other, other_token = sqlite_hub.add_unit()
    plain = f"{sqlite_hub.base}/api/v1/broker-login"
    other_auth = {"Authorization": f"Bearer {other_token}"}
    assert requests.get(plain, headers=other_auth, timeout=10).json() == {
        "unit": other, "user": other, "managed": False, "login": None}
    refused = requests.post(plain, headers=other_auth, timeout=10)
    assert refused.status_code == 409 and refused.json()["error"] == "not_managed"
