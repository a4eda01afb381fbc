"""The phone as deployed: `https://<hub>/hp/` and `wss://<hub>/mqtt`, both through nginx.

Everything is the deployment's except ports and paths: nginx with the shipped site file
(systemd/nginx/posko-hub.conf) and a self-made certificate that Chromium trusts (as a phone
trusts the hub's certificate once installed), the real hub app with the setting ./setup.sh hub
writes (`ptt.phone_broker_url = "wss://{host}/mqtt"`), a real Mosquitto from
posko.broker.central_broker with its loopback WebSocket listener, logins and ACL, the real
arbiter, and a `posko ptt --record` unit. Chromium's fake microphone says espeak-ng speech;
the unit must record it (cross-correlation), so the phone's push-to-talk crossed nginx.
Also: plain http gets no WebSocket (a redirect to https), nginx's per-address limit holds,
and the WebSocket listener has the units' rules (logins, client id = user name) and is not
reachable but on loopback.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from gateway.acl import render_acl, write_password_file
from gateway.arbiter import Arbiter
from posko.broker import MosquittoProcess, central_broker, free_port
from posko.settings.core import MqttSettings
from posko.settings.ptt import PttSettings
from tests.hub.support import HubProcess
from tests.phone.conftest import (
    GROUP,
    Ptt,
    hold,
    open_phone,
    read_wav,
    wait_online,
    wait_until,
)
from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.correlate import best_correlation
from tests.support.mqtt import Client
from tests.support.nginx import NGINX, Nginx, make_cert, site_for_test, spki_hash

pytestmark = [pytest.mark.slow]

PHONE = "hp-budi"
PER_ADDRESS = 16  # limit_conn posko_mqtt_per_client in the site file


@pytest.fixture
def deployed(tmp_path: Path, root: str) -> Iterator[SimpleNamespace]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: run ./setup.sh dev")
    crt, key = make_cert(tmp_path)
    users = {"hub": "hub-pw", "arbiter": "arb-pw", "pos-kuta-01": "unit-pw", PHONE: "phone-pw"}
    folder = tmp_path / "broker"
    folder.mkdir()
    passwd = write_password_file(folder / "passwd", users)
    acl = folder / "acl"
    acl.write_text(render_acl(root, members={"pos-kuta-01": [GROUP], PHONE: [GROUP]}))
    config = central_broker(folder, password_file=passwd, acl_file=acl, certfile=crt, keyfile=key,
                            units_port=free_port(), local_port=free_port(), units_bind="127.0.0.1",
                            phones_port=free_port())
    broker = MosquittoProcess(config).start()
    hub = HubProcess(db_url=f"sqlite:///{tmp_path / 'hub.db'}", state_dir=tmp_path / "hub",
                     mqtt_port=broker.port, topic_root=root, extra_env={
                         "POSKO_MQTT_USERNAME": "hub", "POSKO_MQTT_PASSWORD": "hub-pw",
                         "POSKO_PTT_PHONE_BROKER_URL": "wss://{host}/mqtt"})
    nginx = None
    try:
        hub.start()
        http_port, https_port = free_port(), free_port()
        ws_port = config.listeners[1].port
        nginx = Nginx(tmp_path / "nginx", site_for_test(hub.port, hub.port, http_port, https_port,
                                                        crt, key, mqtt_ws_port=ws_port)).start(https_port)
        yield SimpleNamespace(broker=broker, hub=hub, crt=crt, users=users, ws_port=ws_port,
                              http=http_port, https=https_port, units_port=config.listeners[0].port,
                              base=f"https://127.0.0.1:{https_port}")
    finally:
        if nginx is not None:
            nginx.stop()
        hub.stop()
        broker.stop()


@pytest.fixture
def tls_browser(speech, playwright_session, deployed) -> Iterator[object]:
    """Chromium that trusts the hub's self-made certificate (by its key, the way a phone
    that installed it does) and whose fake microphone says the speech file."""
    path = chromium_path()
    if path is None:
        pytest.fail("Debian's chromium is not installed: run ./setup.sh dev")
    b = playwright_session.chromium.launch(
        executable_path=path, headless=True,
        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={speech[0]}",
              "--autoplay-policy=no-user-gesture-required",
              f"--ignore-certificate-errors-spki-list={spki_hash(deployed.crt)}"])
    try:
        yield b
    finally:
        b.close()


def test_phone_talks_over_wss_through_nginx(tls_browser, deployed, root, speech, tmp_path) -> None:
    mqtt = MqttSettings(host="127.0.0.1", port=deployed.broker.port, topic_root=root, keepalive_s=5,
                        username="arbiter", password="arb-pw")
    arbiter = Arbiter(mqtt, PttSettings(command_units=["command-center"]), tmp_path / "recordings").start()
    ptt = Ptt(deployed.broker, root, tmp_path)
    ptt.env.update(POSKO_MQTT_USERNAME="pos-kuta-01", POSKO_MQTT_PASSWORD="unit-pw")
    try:
        assert arbiter.link.wait_connected(5)
        heard = tmp_path / "heard"
        listener = ptt.listen("pos-kuta-01", heard)
        # What enrolment leaves in the phone, without a broker URL of its own: the phone
        # takes the one the hub's page names.
        page = open_phone(tls_browser, deployed, {"unit": PHONE, "name": "Budi", "password": "phone-pw",
                                                  "groups": [GROUP], "root": root})
        url = f"wss://127.0.0.1:{deployed.https}/mqtt"
        assert page.get_attribute("body", "data-broker") == url
        assert page.evaluate("window.isSecureContext") is True
        wait_online(page)
        assert page.evaluate("typeof AudioEncoder") == "function"
        # The page's policy allows exactly the hub's own wss origin for the broker.
        csp = requests.get(f"{deployed.base}/hp/", verify=str(deployed.crt), timeout=10).headers[
            "Content-Security-Policy"]
        assert f"connect-src 'self' wss://127.0.0.1:{deployed.https};" in csp, csp
        time.sleep(1.5)  # the unit is subscribed
        hold(page, 2.5)
        assert wait_until(lambda: list(heard.glob("*.wav")), 10), ptt.stop(listener)
        time.sleep(1.0)
        out = ptt.stop(listener)
        files = list(heard.glob("*.wav"))
        assert len(files) == 1 and PHONE in files[0].name, out
        got = read_wav(files[0])
        assert 2.0 < len(got) / 16000 < 3.6, f"{len(got) / 16000:.2f} s recorded"
        score = best_correlation(got, read_wav(speech[1]))
        print(f"phone -> nginx (wss) -> broker -> unit: correlation {score:.2f}")
        assert score > 0.5, f"the unit did not hear the phone's speech (correlation {score:.2f})"
        assert not page.errors, page.errors
        # The broker saw the phone as itself, from nginx (loopback), not from the page's address.
        assert f"as {PHONE}" in deployed.broker.log_path.read_text(errors="replace")
    finally:
        ptt.close()
        arbiter.stop()


def _upgrade(port: int, *, tls: bool, source: str = "127.0.0.1") -> tuple[socket.socket, str]:
    """Open a WebSocket handshake for /mqtt (subprotocol mqtt) as a browser does; returns the
    socket (kept open: the connection counts while it lives) and the answer's header."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock: socket.socket = raw
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["http/1.1"])
        sock = context.wrap_socket(raw, server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Protocol: mqtt\r\nOrigin: https://127.0.0.1\r\n\r\n".encode())
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return sock, got.split(b"\r\n\r\n", 1)[0].decode("latin-1")


def _status(header: str) -> int:
    return int(header.split(" ", 2)[1]) if header.startswith("HTTP/") else 0


def test_plain_http_gets_no_websocket_and_each_address_has_a_limit(deployed) -> None:
    # ws:// on the plain port: a redirect to https, never an upgrade.
    sock, header = _upgrade(deployed.http, tls=False)
    sock.close()
    # (to the same name on 443: the deployment's port, not this test's)
    assert _status(header) == 301 and "Location: https://127.0.0.1/mqtt" in header, header

    held = []
    try:
        for _ in range(PER_ADDRESS):
            sock, header = _upgrade(deployed.https, tls=True)
            held.append(sock)
            assert _status(header) == 101, header
            assert "Sec-WebSocket-Protocol: mqtt" in header, header
        sock, header = _upgrade(deployed.https, tls=True)
        held.append(sock)
        assert _status(header) == 429, f"the {PER_ADDRESS + 1}th connection from one address: {header}"
        # Another address is not held back by the first one's connections...
        sock, header = _upgrade(deployed.https, tls=True, source="127.0.0.2")
        held.append(sock)
        assert _status(header) == 101, header
        # ...and a connection that ends frees its place.
        held.pop(0).close()
        time.sleep(0.5)
        sock, header = _upgrade(deployed.https, tls=True)
        held.append(sock)
        assert _status(header) == 101, header
    finally:
        for s in held:
            s.close()


def _wss_client(deployed, username: str, password: str, client_id: str | None = None) -> Client:
    """paho over wss://127.0.0.1:<nginx>/mqtt, checking the hub's certificate."""
    return Client(deployed.https, username=username, password=password, client_id=client_id,
                  transport="websockets", tls_ca=deployed.crt)


def test_the_websocket_listener_has_the_units_rules_and_only_loopback(deployed, root) -> None:
    # Bound to loopback alone: another local address finds nothing listening.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", deployed.ws_port), timeout=2).close()
    # Through nginx a wrong password is refused, the right one accepted.
    wrong = _wss_client(deployed, PHONE, "not-the-password")
    assert not wrong.wait_connected(5), "a wrong password got in over wss"
    wrong.close()
    # A phone that sends a unit's client id gets its own user name as id: the unit, on its
    # TLS listener, stays connected.
    unit = Client(deployed.units_port, host="localhost", username="pos-kuta-01", password="unit-pw",
                  client_id="pos-kuta-01", tls_ca=deployed.crt)
    assert unit.wait_connected()
    phone = _wss_client(deployed, PHONE, "phone-pw", client_id="pos-kuta-01")
    try:
        assert phone.wait_connected(5)
        time.sleep(1.0)
        assert unit.disconnects == 0, "a phone with a unit's client id knocked the unit offline"
        # And the ACL holds over wss: the phone talks in its group under its own id only
        # (the hub's login, which reads everything, watches).
        watch = Client(deployed.broker.port, username="hub", password="hub-pw")
        assert watch.wait_connected()
        watch.subscribe(f"{root}/tg/#", qos=0)
        phone.publish(f"{root}/tg/{GROUP}/floor/request/{PHONE}", b'{"action": "request", "spurt": 1}')
        phone.publish(f"{root}/tg/{GROUP}/floor/request/pos-kuta-01", b'{"action": "request", "spurt": 2}')
        time.sleep(1.0)
        seen = []
        while not watch.messages.empty():
            seen.append(watch.messages.get_nowait().topic)
        watch.close()
        assert f"{root}/tg/{GROUP}/floor/request/{PHONE}" in seen
        assert f"{root}/tg/{GROUP}/floor/request/pos-kuta-01" not in seen, "a phone spoke under a unit's id"
    finally:
        phone.close()
        unit.close()
