"""One reconnecting MQTT connection per process, shared by its parts.

paho-mqtt does the protocol; this wrapper adds what every Posko process needs on top:
subscriptions that survive a broker restart (re-sent on every connect), handlers keyed by
topic pattern, a last-will, and a `connected` event to wait on. A broker that is down at
start is not an error: the link keeps trying every `reconnect_max_s` at most.

Every socket sets TCP_NODELAY: Posko's messages are small and answer each other (a floor
request, its grant, the first audio frame), and with Nagle's algorithm a small write that
follows another waits for the peer's delayed ACK (~40 ms on Linux).

Every subscription's SUBACK is checked: one the broker refuses (an ACL that does not
allow it) is logged as an error and listed in `refused` (pattern -> reason), which the
process reports (the heartbeat, `posko doctor`), instead of failing silently.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from posko.settings.core import MqttSettings

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]


@dataclass(frozen=True)
class Will:
    """Published by the broker when this client vanishes without disconnecting."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class MqttLink:
    """A paho client that reconnects by itself and re-subscribes after every connect."""

    def __init__(self, settings: MqttSettings, client_id: str | None = None, *,
                 will: Will | None = None, reconnect_max_s: float = 2.0,
                 on_connect: Callable[[], None] | None = None,
                 on_disconnect: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.client_id = client_id or f"posko-{uuid.uuid4().hex[:10]}"
        self.connected = threading.Event()
        self._subs: dict[str, tuple[int, bool, Handler]] = {}  # pattern -> (qos, no_local, handler)
        # (pattern, handler) pairs for the network thread, replaced (never changed) on every
        # subscribe/unsubscribe, so a message reads it without taking the lock or copying.
        self._handlers: tuple[tuple[str, Handler], ...] = ()
        self._lock = threading.Lock()
        # SUBACK bookkeeping: message id -> pattern of each subscription in flight, and
        # the patterns the broker refused (pattern -> reason).
        self._sub_mids: dict[int, str] = {}
        self._early_acks: dict[int, list] = {}  # SUBACKs that beat their mid's bookkeeping
        self.refused: dict[str, str] = {}
        self._granted: set[str] = set()  # patterns the broker granted on this connection
        self.granted = threading.Condition(self._lock)
        self._on_connect_cb = on_connect
        self._on_disconnect_cb = on_disconnect
        # MQTT 5 for topic aliases (see publish_stream); Mosquitto 2 speaks it.
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                   protocol=mqtt.MQTTv5)
        self._aliases: dict[str, int] = {}  # topic -> alias, valid for this connection only
        self._alias_max = 0  # the broker's Topic Alias Maximum from its CONNACK
        self._alias_lock = threading.Lock()
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password or None)
        if will is not None:
            self._client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=reconnect_max_s)
        self._client.max_queued_messages_set(1000)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message
        self._client.on_subscribe = self._handle_subscribe
        self._client.on_socket_open = _no_delay
        self._started = False

    @property
    def root(self) -> str:
        return self.settings.topic_root

    def start(self) -> MqttLink:
        """Begin connecting in the background; returns at once."""
        if not self._started:
            self._client.connect_async(self.settings.host, self.settings.port,
                                       keepalive=self.settings.keepalive_s, clean_start=True)
            self._client.loop_start()
            self._started = True
        return self

    def start_polled(self) -> mqtt.Client:
        """Connect now, without a network thread: the caller runs paho's loop_read /
        loop_write / loop_misc on the returned client itself (one thread driving many
        links in a load generator). There is no automatic reconnection in this mode."""
        if not self._started:
            self._client.connect(self.settings.host, self.settings.port,
                                 keepalive=self.settings.keepalive_s, clean_start=True)
            self._started = True
        return self._client

    @property
    def local_address(self) -> tuple[str, int] | None:
        """This end of the broker connection, None while offline (for diagnostics)."""
        sock = self._client.socket()
        try:
            return sock.getsockname()[:2] if sock is not None else None
        except OSError:
            return None

    def wait_connected(self, timeout_s: float = 5.0) -> bool:
        return self.connected.wait(timeout_s)

    def stop(self) -> None:
        """Disconnect cleanly (no last-will) and stop the network thread."""
        if self._started:
            self.connected.clear()  # a disconnect asked for is not "lost the broker"
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False
        self.connected.clear()

    def subscribe(self, pattern: str, handler: Handler, qos: int = 1, *,
                  no_local: bool = False) -> None:
        """Call handler(topic, payload) for every message matching pattern, across reconnects.

        no_local: MQTT 5's No Local option; the broker does not send back what this link
        published itself (a talker's own audio frames)."""
        with self._lock:
            self._subs[pattern] = (qos, no_local, handler)
            self._handlers = tuple((p, h) for p, (_q, _n, h) in self._subs.items())
            # Decided under the lock: a connect in progress either sees this pattern (below,
            # as a late one) or has already set `connected` (then it is sent here).
            send = self.connected.is_set()
        if send:
            self._send_subscribe(self._client, pattern, qos, no_local)

    def _send_subscribe(self, client, pattern: str, qos: int, no_local: bool = False) -> None:
        options = mqtt.SubscribeOptions(qos=qos, noLocal=no_local)
        result, mid = client.subscribe(pattern, options=options)
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            return  # not sent (connection just dropped): the next connect sends it again
        with self._lock:
            early = self._early_acks.pop(mid, None)
            if early is None:
                self._sub_mids[mid] = pattern
                return
        self._record_suback(pattern, early)

    def wait_subscribed(self, pattern: str, timeout_s: float = 5.0) -> bool:
        """True once the broker has granted pattern on this connection; False when it
        refused it or did not answer in time (see `refused`)."""
        with self.granted:
            return self.granted.wait_for(
                lambda: pattern in self._granted or pattern in self.refused, timeout_s) \
                and pattern in self._granted

    def unsubscribe(self, pattern: str) -> None:
        with self._lock:
            self._subs.pop(pattern, None)
            self._handlers = tuple((p, h) for p, (_q, _n, h) in self._subs.items())
        if self.connected.is_set():
            self._client.unsubscribe(pattern)

    def publish(self, topic: str, payload: bytes | str, qos: int = 0,
                retain: bool = False) -> mqtt.MQTTMessageInfo:
        """Queue a message; QoS 1 messages published while offline are sent on reconnect."""
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def publish_stream(self, topic: str, payload: bytes, qos: int = 0) -> mqtt.MQTTMessageInfo:
        """Publish one message of a fast stream on one topic (a talker's 50 audio frames a
        second). The first message on a connection names the topic and an MQTT 5 topic
        alias; the following ones carry only the two-byte alias instead of the topic name
        (about 40 bytes less per frame). Aliases last one connection: they are forgotten
        on every disconnect and connect, and a broker that allows none gets plain topics."""
        props = None
        with self._alias_lock:
            alias = self._aliases.get(topic)
            if alias is None and self.connected.is_set() and len(self._aliases) < self._alias_max:
                alias = self._aliases[topic] = len(self._aliases) + 1
                props = mqtt.Properties(mqtt.PacketTypes.PUBLISH)
                props.TopicAlias = alias  # this message binds the alias to the topic
            elif alias is not None:
                props = mqtt.Properties(mqtt.PacketTypes.PUBLISH)
                props.TopicAlias = alias
                topic = ""  # the alias alone names the topic
            return self._client.publish(topic, payload, qos=qos, properties=props)

    def _forget_aliases(self, alias_max: int = 0) -> None:
        with self._alias_lock:
            self._aliases.clear()
            self._alias_max = alias_max

    # paho callbacks (network thread)
    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if getattr(reason_code, "is_failure", False):
            log.warning("mqtt %s refused by %s:%s: %s", self.client_id, self.settings.host,
                        self.settings.port, reason_code)
            return
        self._forget_aliases(getattr(properties, "TopicAliasMaximum", 0) or 0)
        with self._lock:
            subs = dict(self._subs)
            self._granted.clear()
            self._sub_mids.clear()
            self._early_acks.clear()
        for pattern, (qos, no_local, _handler) in subs.items():
            self._send_subscribe(client, pattern, qos, no_local)
        with self._lock:
            self.connected.set()
            # Patterns added while the ones above were sent were not sent by subscribe().
            late = [(p, q, n) for p, (q, n, _h) in self._subs.items()
                    if subs.get(p, (None, None))[:2] != (q, n)]
        for pattern, qos, no_local in late:
            self._send_subscribe(client, pattern, qos, no_local)
        log.info("mqtt %s connected to %s:%s", self.client_id, self.settings.host, self.settings.port)
        if self._on_connect_cb:
            self._on_connect_cb()

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        self._forget_aliases()
        if was:
            log.warning("mqtt %s lost the broker (%s); reconnecting", self.client_id, reason_code)
        if self._on_disconnect_cb:
            self._on_disconnect_cb()

    def _handle_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._lock:
            pattern = self._sub_mids.pop(mid, None)
            if pattern is None:
                self._early_acks[mid] = list(reason_codes)
                return
        self._record_suback(pattern, list(reason_codes))

    def _record_suback(self, pattern: str, reason_codes: list) -> None:
        code = reason_codes[0] if reason_codes else None
        failed = code is None or getattr(code, "is_failure", False) or (
            isinstance(code, int) and code >= 0x80)
        reason = str(code) if code is not None else "no answer code"
        if failed:  # logged before waiters hear of it, so the log is there when they look
            log.error("mqtt %s: the broker REFUSED the subscription %s (%s): messages on it "
                      "will not arrive; check this user's ACL", self.client_id, pattern, reason)
        with self.granted:
            if failed:
                self.refused[pattern] = reason
                self._granted.discard(pattern)
            else:
                self.refused.pop(pattern, None)
                self._granted.add(pattern)
            self.granted.notify_all()

    def _handle_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        for pattern, handler in self._handlers:
            if _matches(pattern, msg.topic):
                try:
                    handler(msg.topic, msg.payload)
                except Exception:  # a bad message must not kill the network thread
                    log.exception("handler for %s failed on %s", pattern, msg.topic)


def _no_delay(client, userdata, sock) -> None:
    """paho's on_socket_open: before CONNECT is sent, so every packet goes out at once."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError) as exc:  # not a TCP socket (a Unix socket, a wrapper)
        log.debug("mqtt: no TCP_NODELAY on %r: %s", sock, exc)


@functools.lru_cache(maxsize=4096)
def _matches(pattern: str, topic: str) -> bool:
    """paho's topic_matches_sub builds a matcher tree on every call; a unit sees the same
    few topics 50 times a second (one talker's audio), so the answers are kept."""
    return mqtt.topic_matches_sub(pattern, topic)
