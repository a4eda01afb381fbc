"""A small TCP proxy for fault tests: forwards to a server (the hub, a broker), counts the
bytes each way, and can cut a connection mid-body.

`cut_after_bytes` makes the proxy close both sides of the next `cuts` connections once that
many bytes have gone from the client to the server (a photo upload is the only request
that large), so the kiosk sees its upload break in the middle.
"""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cut_after_bytes = 0
        self.cuts = 0  # connections still to cut
        self.cut_done = 0  # connections cut so far
        self.bytes_up = 0  # client to server, all connections
        self.bytes_down = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_next(self, after_bytes: int, count: int = 1) -> None:
        with self.lock:
            self.cut_after_bytes, self.cuts = after_bytes, count

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self._conns += [client, server]
            state = {"up": 0, "cut": False}
            threading.Thread(target=self._pipe, args=(client, server, state, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, state, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, state: dict, upstream: bool) -> None:
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                with self.lock:
                    if upstream:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                if upstream:
                    state["up"] += len(data)
                    with self.lock:
                        if self.cuts and self.cut_after_bytes and state["up"] >= self.cut_after_bytes:
                            self.cuts -= 1
                            self.cut_done += 1
                            state["cut"] = True
                    if state["cut"]:
                        break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def cut_open_connections(self) -> None:
        """Break every connection now (a dropped link); the proxy keeps accepting new ones."""
        for sock in list(self._conns):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by its pump
                pass

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for sock in self._conns:
            try:
                sock.close()
            except OSError:
                pass
