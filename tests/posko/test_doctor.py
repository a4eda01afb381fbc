"""`posko doctor` tells a maintainer what is wrong: broker, bridge, hub."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest

from posko.config import load_settings
from posko.doctor import FAIL, OK, WARN, check_broker, check_hub

pytestmark = pytest.mark.broker


def settings_for(tmp_path: Path, **env: str):
    base = {"POSKO_POSKO_STATE_DIR": str(tmp_path / "var")}
    base.update(env)
    return load_settings(None, environ=base)


def test_bridge_up_then_down_when_the_central_broker_goes(broker_factory, tmp_path: Path) -> None:
    central = broker_factory()
    local = broker_factory(bridge_to=central)
    settings = settings_for(tmp_path, POSKO_MQTT_PORT=str(local.port))
    deadline = time.monotonic() + 10
    while True:
        broker, bridge = check_broker(settings)
        if bridge.status == OK or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert broker.status == OK
    assert bridge.status == OK, bridge
    central.process.stop()
    try:
        deadline = time.monotonic() + 20
        while True:
            broker, bridge = check_broker(settings)
            if bridge.status == FAIL or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert broker.status == OK
        assert bridge.status == FAIL and "bridge down" in bridge.detail
        assert "APN" in bridge.fix
    finally:
        central.process.start()


def test_broker_down_is_a_failure_with_a_fix(tmp_path: Path) -> None:
    from posko.broker import free_port

    settings = settings_for(tmp_path, POSKO_MQTT_PORT=str(free_port()))
    broker, bridge = check_broker(settings)
    assert broker.status == FAIL and "unreachable" in broker.detail and broker.fix
    assert bridge.status == WARN


def _serve(handler_body):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            status, ctype, body = handler_body(self.path)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_hub_reachable_and_unreachable(tmp_path: Path) -> None:
    import datetime as dt
    import json

    def hub(path):
        if path == "/api/v1/ping":
            now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
            return 200, "application/json", json.dumps({"service": "posko-hub", "time": now}).encode()
        return 404, "application/json", b"{}"

    server = _serve(hub)
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        ok = check_hub(settings_for(tmp_path, POSKO_KIOSK_HUB_URL=url))
        assert ok.status == OK and "HTTP 200" in ok.detail and "Posko hub" in ok.detail
    finally:
        server.shutdown()
        server.server_close()
    down = check_hub(settings_for(tmp_path, POSKO_KIOSK_HUB_URL=url))
    assert down.status == FAIL and "unreachable" in down.detail
    assert "outbox" in down.fix


def test_a_captive_portal_is_not_taken_for_the_hub(tmp_path: Path) -> None:
    server = _serve(lambda path: (200, "text/html", b"<html><h1>Kuota habis</h1></html>"))
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        check = check_hub(settings_for(tmp_path, POSKO_KIOSK_HUB_URL=url))
        assert check.status == FAIL and "not the Posko hub" in check.detail and "portal" in check.fix
    finally:
        server.shutdown()
        server.server_close()
