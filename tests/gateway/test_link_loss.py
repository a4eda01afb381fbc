"""A unit whose network drops (Wi-Fi loss) through a TCP proxy that cuts and refuses."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

import pytest

from tests.gateway.conftest import EndlessSource, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(60)]


class CuttableProxy:
    """Forwards TCP to the broker until cut; while down it refuses new connections."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        # shutdown() before close(): it wakes the other pump blocked in recv() on the same
        # socket; a bare close() would leave that TCP connection open until data came.
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def cut(self) -> None:
        self.up.clear()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.server.close()


def test_wifi_loss_cuts_the_talker_frees_the_floor_and_the_unit_comes_back(net, mqtt_settings) -> None:
    proxy = CuttableProxy(mqtt_settings.port)
    net.stoppers.append(proxy.close)
    arb = net.arbiter()
    via_wifi = dataclasses.replace(mqtt_settings, port=proxy.port)
    dewi = net.unit("dewi", EndlessSource, mqtt=via_wifi, will=True)
    listener = net.unit("pos-2")
    dewi.client.press()
    assert wait_until(lambda: listener.client.counters.spurts_heard == 1, 3)

    proxy.cut()  # the Wi-Fi is gone
    assert wait_until(lambda: dewi.cuts == ["link"], 3)
    assert wait_until(lambda: arb.status()["groups"].get("batang-kota") == "", 3)
    assert arb.status()["offline_releases"] == 1, str(arb.status())  # by the will, not the silence rule
    assert dewi.client.status()["mode"] == "offline"
    time.sleep(1.5)
    proxy.restore()
    back = time.monotonic()
    assert wait_until(lambda: dewi.client.status()["mode"] == "arbiter", 5)
    assert time.monotonic() - back <= 5.0
    dewi.client.press()
    assert wait_until(lambda: len(dewi.seen("grant")) == 2, 3)
