"""Units pin the hub's certificate: HTTPS to the hub trusts the pinned file, nothing else."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from pathlib import Path

from posko.hubclient import SERVICE, HubClient
from tests.install.test_proxy_slow_clients import make_cert


class Hub(http.server.BaseHTTPRequestHandler):
    """Answers the units' probe as the hub does (GET /api/v1/ping names its service)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"service": SERVICE, "api": 1}).encode())

    def log_message(self, *args) -> None:
        pass


def test_the_pinned_certificate_is_trusted_and_an_unpinned_self_made_one_is_not(tmp_path: Path) -> None:
    crt, key = make_cert(tmp_path)
    (tmp_path / "other").mkdir()
    other, _ = make_cert(tmp_path / "other")  # another machine's self-made certificate
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_port}"
    try:
        assert HubClient(url, lambda: None, timeout_s=5, ca_file=str(crt)).ping()
        assert not HubClient(url, lambda: None, timeout_s=5).ping()  # public CAs do not know it
        assert not HubClient(url, lambda: None, timeout_s=5, ca_file=str(other)).ping()  # another hub's
    finally:
        server.shutdown()
