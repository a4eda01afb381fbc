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


def test_hub_reachable_and_unreachable(tmp_path: Path) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200 if self.path == "/api/v1/openapi.json" else 404)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        ok = check_hub(settings_for(tmp_path, POSKO_KIOSK_HUB_URL=url))
        assert ok.status == OK and "HTTP 200" in ok.detail
    finally:
        server.shutdown()
        server.server_close()
    down = check_hub(settings_for(tmp_path, POSKO_KIOSK_HUB_URL=url))
    assert down.status == FAIL and "unreachable" in down.detail
    assert "outbox" in down.fix
