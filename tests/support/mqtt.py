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
                 transport: str = "tcp") -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connected = threading.Event()
        self.connect_rc: object = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
                                  transport=transport)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connect_rc = reason_code
        self._connected.set()

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
