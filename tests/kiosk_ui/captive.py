"""A TCP proxy that answers like a captive portal, then lets the real hub through.

Modes (switch at any time; each new connection follows the mode of that moment):
* "portal": every request is read and answered `200 text/html` with a hotspot page
  ("kuota habis"), as an operator's page or a hotel login does;
* "redirect": every request is answered `302 Found` to the portal's login page, and the
  login page itself is `200 text/html`;
* "pass": bytes are piped to the hub and back unchanged.
"""

from __future__ import annotations

import contextlib
import socket
import threading

PAGE = (b"<!doctype html><html><head><title>Kuota habis</title></head><body>"
        b"<h1>Kuota internet Anda habis</h1><p>Silakan isi ulang paket data.</p></body></html>")


class CaptivePortal:
    def __init__(self, hub_port: int, mode: str = "portal") -> None:
        self.hub = ("127.0.0.1", hub_port)
        self.mode = mode
        self.requests = 0  # answered by the portal itself
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            target = self._pass if self.mode == "pass" else self._answer
            threading.Thread(target=target, args=(client, self.mode), daemon=True).start()

    def _answer(self, client: socket.socket, mode: str) -> None:
        client.settimeout(10)
        buffer = b""
        try:
            while True:  # keep-alive: answer every request on this connection
                while b"\r\n\r\n" not in buffer:
                    data = client.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(rest) < length:
                    data = client.recv(65536)
                    if not data:
                        return
                    rest += data
                buffer = rest[length:]
                if self.mode == "pass":  # the portal went away: this connection ends
                    return
                path = head.split(b" ")[1] if b" " in head else b"/"
                self.requests += 1
                if mode == "redirect" and not path.startswith(b"/login"):
                    client.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + self.url.encode() +
                                   b"/login?dst=hub\r\nContent-Length: 0\r\n\r\n")
                else:
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                                   b"Content-Length: " + str(len(PAGE)).encode() + b"\r\n\r\n" + PAGE)
        except OSError:
            return
        finally:
            client.close()

    def _pass(self, client: socket.socket, _mode: str) -> None:
        try:
            server = socket.create_connection(self.hub, timeout=10)
        except OSError:
            client.close()
            return

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (src, dst):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pipe, args=(server, client), daemon=True).start()
        pipe(client, server)
        client.close()
        server.close()
