"""MQTT helpers for tests: a started Mosquitto, and a paho client whose messages can be awaited."""

from __future__ import annotations

import queue
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from posko.broker import Bridge, BrokerConfig, MosquittoProcess, free_port, make_password_file


@dataclass
class RunningBroker:
    """A broker the test session started: its port and the process handle."""

    process: MosquittoProcess
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def websockets_port(self) -> int:
        return self.process.config.websockets_port


def start_broker(
    state_dir: Path,
    *,
    users: dict[str, str] | None = None,
    acl: str | None = None,
    websockets: bool = False,
    bridge_to: RunningBroker | None = None,
    bridge_topics: tuple[str, ...] = ("posko/v1/# both 1",),
    bridge_user: tuple[str, str] | None = None,
) -> RunningBroker:
    """Start a Mosquitto on a free loopback port with the options a test needs."""
    state_dir.mkdir(parents=True, exist_ok=True)
    password_file = make_password_file(state_dir / "passwd", users) if users else None
    acl_file = None
    if acl is not None:
        acl_file = state_dir / "acl"
        acl_file.write_text(acl)
    bridges: tuple[Bridge, ...] = ()
    if bridge_to is not None:
        bridges = (Bridge(
            name="up", address=f"127.0.0.1:{bridge_to.port}", topics=bridge_topics,
            remote_username=bridge_user[0] if bridge_user else "",
            remote_password=bridge_user[1] if bridge_user else "",
        ),)
    config = BrokerConfig(
        state_dir=state_dir, port=free_port(),
        websockets_port=free_port() if websockets else 0,
        password_file=password_file, acl_file=acl_file,
        allow_anonymous=users is None, bridges=bridges,
    )
    return RunningBroker(MosquittoProcess(config).start())


class Client:
    """A connected paho client; received messages land in a queue that tests wait on."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", username: str | None = None,
                 password: str | None = None, client_id: str | None = None,
                 transport: str = "tcp", tls_ca: Path | None = None,
                 protocol: int = mqtt.MQTTv311, ws_path: str = "/mqtt") -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connected = threading.Event()
        self.connect_rc: object = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
                                  transport=transport, protocol=protocol)
        self.disconnects = 0
        if transport == "websockets":
            self.client.ws_set_options(path=ws_path)
        self.client.on_disconnect = self._on_disconnect
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connect_rc = reason_code
        self._connected.set()

    def _on_disconnect(self, *args) -> None:
        self.disconnects += 1

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """True when the broker accepted the connection within timeout."""
        if not self._connected.wait(timeout):
            return False
        return not getattr(self.connect_rc, "is_failure", False)

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos)
        if not done.wait(timeout):
            raise TimeoutError(f"no SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(5)

    def expect(self, timeout: float = 5.0) -> mqtt.MQTTMessage:
        """The next message, or AssertionError after timeout."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no MQTT message within {timeout} s") from None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def make_tls(folder: Path, host: str = "localhost") -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for `host` (and 127.0.0.1), made with the
    openssl command line: (ca.crt, server.crt, server.key)."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, crt = (folder / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Posko test CA",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}", "-keyout", str(key), "-out", str(csr))
    ext = folder / "san.ext"
    ext.write_text(f"subjectAltName=DNS:{host},IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return ca, crt, key


class Gate:
    """A TCP forwarder on a fixed loopback port that can be shut (every connection cut,
    new ones refused: an uplink that is down) and opened again on the same port."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        from posko.broker import free_port as _free

        self.target = (target_host, target_port)
        self.port = _free()
        self._listener = None
        self._conns: list = []
        self.open()

    def open(self) -> None:
        import socket

        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener) -> None:
        import socket

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self._conns += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        try:
            while data := src.recv(16384):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.close()
                except OSError:
                    pass

    def shut(self) -> None:
        import socket

        if self._listener is not None:
            try:  # wakes the thread blocked in accept() (close alone would not, on Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        for sock in self._conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conns = []
