"""Run a real Debian Mosquitto with a configuration Posko writes itself.

Used by `posko up` (the dev stack's broker) and by the test harness (one broker per test
session, plus brokers with passwords, ACLs, WebSockets or a bridge when a test needs them).
Mosquitto's own config language is small; writing it here keeps every option visible.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from posko import topics
from posko.errors import PoskoError


class BrokerError(PoskoError, RuntimeError):
    """The broker could not be configured or started."""


# The largest payload any Posko message needs, in bytes. An audio frame is < 1 KB (one
# Opus packet of 20 ms plus a 16-byte header); the largest JSON message is a unit's
# heartbeat (a few KB with every part's status). 64 KiB leaves room for both and keeps a
# flood of huge messages (250 MiB reached every listener before) off the brokers.
MAX_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Bridge:
    """A Mosquitto bridge from this broker to another one.

    `clientid` defaults to `remote_username` (the central broker binds client ids to user
    names, so anything else would be replaced anyway). With `cafile` the bridge speaks TLS
    and checks the central broker's certificate and host name.
    """

    name: str
    address: str  # host:port
    topics: tuple[str, ...] = ("posko/v1/# both 1",)
    remote_username: str = ""
    remote_password: str = ""
    restart_timeout_s: int = 2  # how soon a dropped bridge is retried
    restart_max_s: int = 0  # with it: back off from restart_timeout_s up to this
    cafile: Path | None = None
    clientid: str = ""

    def render(self) -> list[str]:
        clientid = self.clientid or self.remote_username or f"bridge-{self.name}"
        restart = str(self.restart_timeout_s) + (f" {self.restart_max_s}" if self.restart_max_s else "")
        lines = [
            f"connection {self.name}",
            f"address {self.address}",
            # A persistent session at the central broker: QoS 1 messages (alerts, floor
            # requests, acks) wait on both sides while the uplink is down.
            "cleansession false",
            "try_private true",
            f"restart_timeout {restart}",
            "keepalive_interval 10",
            "notifications true",
            f"remote_clientid {clientid}",
        ]
        if self.cafile:
            lines += [f"bridge_cafile {self.cafile}", "bridge_insecure false"]
        if self.remote_username:
            lines.append(f"remote_username {self.remote_username}")
        if self.remote_password:
            lines.append(f"remote_password {self.remote_password}")
        lines += [f"topic {t}" for t in self.topics]
        return lines


def listener_line(port: int, bind: str, protocol: str) -> str:
    """The `listener` line. A websockets listener is opened by libwebsockets, which binds to
    an interface, not an address: Debian 12's Mosquitto (2.0.11) given `127.0.0.1` listens on
    every address (eclipse-mosquitto/mosquitto#2085). Loopback is named by its interface
    (`lo`, which binds 127.0.0.1 alone); any other address is written as given."""
    if protocol == "websockets" and bind == "127.0.0.1":
        bind = "lo"
    return f"listener {port}" + (f" {bind}" if bind else "")


@dataclass(frozen=True)
class Listener:
    """One more listener besides the default one (TLS for units, WebSockets for browsers)."""

    port: int
    bind: str = ""  # "" = every address
    protocol: str = "mqtt"  # mqtt | websockets
    certfile: Path | None = None
    keyfile: Path | None = None
    # Replace the client id a client sends with its user name: no client can connect with
    # another's id and knock it offline (a unit's bridge, its alerts, its push-to-talk).
    clientid_from_username: bool = False

    def render(self) -> list[str]:
        lines = [listener_line(self.port, self.bind, self.protocol), f"protocol {self.protocol}"]
        if self.certfile:
            lines.append(f"certfile {self.certfile}")
        if self.keyfile:
            lines.append(f"keyfile {self.keyfile}")
        if self.clientid_from_username:
            lines.append("use_username_as_clientid true")
        return lines


@dataclass(frozen=True)
class BrokerConfig:
    """Everything that goes into one generated mosquitto.conf."""

    state_dir: Path
    port: int
    bind: str = "127.0.0.1"
    websockets_port: int = 0
    password_file: Path | None = None
    acl_file: Path | None = None
    allow_anonymous: bool = True
    bridges: tuple[Bridge, ...] = field(default_factory=tuple)
    persistence: bool = True
    # Lines appended to the default listener's section (a plugin and its options).
    extra_lines: tuple[str, ...] = ()
    run_as: str = field(default_factory=lambda: pwd.getpwuid(os.getuid()).pw_name)
    message_size_limit: int = MAX_MESSAGE_BYTES  # 0: no limit
    listeners: tuple[Listener, ...] = ()
    # On the default listener, see Listener.clientid_from_username.
    clientid_from_username: bool = False
    max_queued_messages: int = 2000

    def render(self, system: bool = False) -> str:
        """The mosquitto.conf text. With `system`, a conf.d snippet for Debian's own
        Mosquitto service (its main file sets the user, the state and log places)."""
        lines = ["# generated by Posko (posko.broker); regenerate, do not edit"]
        lines.append("per_listener_settings false")
        if not system:
            # Mosquitto started as root would switch to the 'mosquitto' user and then fail
            # to read files under the caller's state dir; keep the caller's identity.
            lines += [f"user {self.run_as}", f"persistence_location {self.state_dir}/",
                      "log_dest stderr", "log_type error", "log_type warning", "log_type notice"]
        lines += [
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"persistence {'true' if self.persistence else 'false'}",
            "autosave_interval 30",
            "connection_messages true",
            f"max_queued_messages {self.max_queued_messages}",
            # Audio (QoS 0) is worthless late: never queued for an absent client or bridge.
            "queue_qos0_messages false",
            # Without it small packets (a floor grant) can wait ~40 ms for a delayed ACK (Nagle).
            "set_tcp_nodelay true",
        ]
        if self.message_size_limit:
            # Both: message_size_limit drops an oversized publish without forwarding it;
            # max_packet_size disconnects a client that sends a packet far too large (the
            # topic and properties make a packet a little larger than its payload).
            lines += [f"message_size_limit {self.message_size_limit}",
                      f"max_packet_size {self.message_size_limit + 1024}"]
        lines += [
            "",
            f"listener {self.port} {self.bind}",
            "protocol mqtt",
        ]
        if self.clientid_from_username:
            lines.append("use_username_as_clientid true")
        if self.websockets_port:
            lines += ["", listener_line(self.websockets_port, self.bind, "websockets"), "protocol websockets"]
        for listener in self.listeners:
            lines += [""] + listener.render()
        if self.password_file:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        lines += list(self.extra_lines)
        for bridge in self.bridges:
            lines += [""] + bridge.render()
        return "\n".join(lines) + "\n"


def unit_bridge_topics(unit: str, root: str = topics.ROOT) -> tuple[str, ...]:
    """What a unit's bridge carries, each way: its own messages out, what it needs in.

    QoS 1 for alerts, acks, floor requests and state, announcements; QoS 0 for audio,
    which the brokers never queue (`queue_qos0_messages false`): a late frame is noise.
    The local-only topics (the kiosk's assistant events: residents' questions) stay home.
    """
    topics.check_id("unit", unit)
    return (
        f"{root}/unit/{unit}/status out 1",
        f"{root}/alert/{unit} out 1",
        f"{root}/tg/+/floor/request/{unit} out 1",
        f"{root}/tg/+/audio/{unit} out 0",
        f"{root}/alert/{unit}/ack in 1",
        f"{root}/tg/+/floor/state in 1",
        f"{root}/tg/+/audio/+ in 0",
        f"{root}/tg/+/announce in 1",
        f"{root}/arbiter/status in 1",
        f"{root}/kb/current in 1",
        f"{root}/release/current in 1",
    )


def central_broker(state_dir: Path, *, password_file: Path, acl_file: Path,
                   certfile: Path, keyfile: Path, units_port: int = 8883,
                   local_port: int = 1883, units_bind: str = "",
                   phones_port: int = 0) -> BrokerConfig:
    """The command center's Mosquitto: units (and their bridges) over TLS on `units_port`,
    with client ids bound to user names; the hub, ingest and arbiter on localhost.

    Phones and the dispatcher's console reach it over WebSockets on `phones_port`, bound to
    loopback only: nginx is the one way in (wss://<hub>/mqtt, the hub's own origin and
    certificate, systemd/nginx/posko-hub.conf). Same logins, ACL and client-id binding as
    the units' listener (per_listener_settings false); 0: no WebSocket listener."""
    listeners = [Listener(units_port, units_bind, certfile=certfile, keyfile=keyfile,
                          clientid_from_username=True)]
    if phones_port:
        listeners.append(Listener(phones_port, "127.0.0.1", protocol="websockets",
                                  clientid_from_username=True))
    return BrokerConfig(
        state_dir=state_dir, port=local_port, bind="127.0.0.1",
        password_file=password_file, acl_file=acl_file, allow_anonymous=False,
        listeners=tuple(listeners), max_queued_messages=5000)


def unit_broker(state_dir: Path, *, unit: str, bridge_password: str, central: str,
                cafile: Path, password_file: Path, acl_file: Path, port: int = 1883,
                root: str = topics.ROOT) -> BrokerConfig:
    """A unit's local Mosquitto: its processes on localhost (users and an ACL), one bridge
    to the central broker over TLS with the unit's own credentials (`central` is host:port)."""
    return BrokerConfig(
        state_dir=state_dir, port=port, bind="127.0.0.1",
        password_file=password_file, acl_file=acl_file, allow_anonymous=False,
        bridges=(Bridge(name="posko-central", address=central, topics=unit_bridge_topics(unit, root),
                        remote_username=unit, remote_password=bridge_password, clientid=unit,
                        restart_timeout_s=2, restart_max_s=30, cafile=cafile),))


def deployment_files() -> dict[str, str]:
    """The conf.d snippets shipped in systemd/mosquitto/ (UNIT_ID is filled in by the
    installer; the bridge's password by firmware/bridge_conf.py from the unit's enrolment).
    The central broker reads the password file and ACL the hub rewrites (setup.sh,
    ptt.broker_password_file). `python -m posko.broker DIR` writes them."""
    etc = Path("/etc/mosquitto")
    managed = Path("/var/lib/posko-broker")
    central = central_broker(Path("/var/lib/mosquitto"), password_file=managed / "units.passwd",
                             acl_file=managed / "units.acl", certfile=Path("/etc/posko/tls/hub.crt"),
                             keyfile=Path("/etc/posko/tls/hub.key"), phones_port=8080)
    unit = unit_broker(Path("/var/lib/mosquitto"), unit="UNIT_ID", bridge_password="",
                       central="hub.polres.example:8883", cafile=Path("/etc/posko/central-ca.pem"),
                       password_file=etc / "posko-local.passwd", acl_file=etc / "posko-local.acl")
    return {"posko-central.conf": central.render(system=True), "posko-unit.conf": unit.render(system=True)}


# The dev stack's broker users (`posko up`): role -> user name. The unit's user is its id
# ([posko] unit_id), `posko ptt` talks as ptt-<hostname> (a second terminal as ptt-2).
DEV_USERS_FILE = "users.json"  # under <state_dir>/broker/, 0600: user -> password


def ptt_terminal_id() -> str:
    """The unit id `posko ptt` talks as by default on this machine: ptt-<hostname>."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:50] or "laptop"
    return f"ptt-{host}"


def dev_users(unit_id: str) -> dict[str, str]:
    """role -> MQTT user name of every client of the dev stack."""
    return {"hub": "hub", "arbiter": "arbiter", "unit": unit_id, "kiosk": "kiosk",
            "watch": "watch", "ptt": ptt_terminal_id(), "ptt2": "ptt-2"}


def dev_credentials(state_dir: Path, users: Iterable[str] = ()) -> dict[str, str]:
    """user -> password of the dev stack's broker, from <state_dir>/broker/users.json; users
    not in it yet get a new random password (kept, 0600). Every dev-stack client reads its
    login from here, the same file `posko up` makes the broker's password file from."""
    path = state_dir / "broker" / DEV_USERS_FILE
    try:
        known = json.loads(path.read_text())
    except FileNotFoundError:
        known = {}
    except (OSError, ValueError) as exc:
        raise BrokerError(f"{path}: unreadable ({exc}); delete it and run posko up again") from None
    missing = [u for u in users if u not in known]
    if missing:
        for user in missing:
            known[topics.check_id("unit", user)] = secrets.token_urlsafe(18)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(known, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    return known


def dev_client_env(settings, role: str) -> dict[str, str]:
    """POSKO_MQTT_* for a dev-stack child that logs in to the dev broker as `role`."""
    user = dev_users(settings.posko.unit_id)[role]
    password = dev_credentials(settings.state_dir, [user])[user]
    bind = settings.broker.bind
    return {"POSKO_MQTT_HOST": "127.0.0.1" if bind in ("0.0.0.0", "") else bind,
            "POSKO_MQTT_PORT": str(settings.broker.port),
            "POSKO_MQTT_USERNAME": user, "POSKO_MQTT_PASSWORD": password}


def with_dev_login(settings, user: str):
    """`settings` logging in to the dev broker as `user` when no [mqtt] username is set and
    `posko up` made a password for that user in this state dir; else settings unchanged."""
    if settings.mqtt.username:
        return settings
    path = settings.state_dir / "broker" / DEV_USERS_FILE
    if not path.exists():
        return settings
    password = dev_credentials(settings.state_dir).get(user)
    if password is None:
        return settings
    return dataclasses.replace(settings, mqtt=dataclasses.replace(
        settings.mqtt, username=user, password=password))


def find_mosquitto(binary: str = "mosquitto") -> str:
    """Absolute path of the Mosquitto executable, or BrokerError saying how to get it."""
    candidates = [binary]
    if os.sep not in binary:
        candidates.append(f"/usr/sbin/{binary}")
    for cand in candidates:
        found = shutil.which(cand)
        if found:
            return found
    raise BrokerError(
        f"'{binary}' not found: install Debian's mosquitto (./setup.sh dev does) "
        "or set [broker] binary"
    )


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (a bind test, as the broker would do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout_s: float = 10.0,
                  proc: subprocess.Popen | None = None) -> None:
    """Block until host:port accepts a TCP connection; BrokerError on timeout or early exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BrokerError(f"process exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise BrokerError(f"nothing listens on {host}:{port} after {timeout_s:g} s")


def make_password_file(path: Path, users: dict[str, str], binary: str = "mosquitto_passwd") -> Path:
    """Write a Mosquitto password file with Debian's mosquitto_passwd (hashed entries)."""
    tool = shutil.which(binary) or shutil.which(f"/usr/bin/{binary}")
    if tool is None:
        raise BrokerError(f"'{binary}' not found: install Debian's mosquitto")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    for user, password in users.items():
        subprocess.run([tool, "-b", str(path), user, password], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    path.chmod(0o600)
    return path


class MosquittoProcess:
    """One running Mosquitto started from a generated config; stopped by its own pid."""

    def __init__(self, config: BrokerConfig, binary: str = "mosquitto",
                 log_path: Path | None = None, keep_conf: bool = False) -> None:
        """keep_conf: write the config file only when it is absent, and start from what it
        says then (something else edits it between restarts: a unit's bridge login)."""
        self.config = config
        self.keep_conf = keep_conf
        self.binary = find_mosquitto(binary)
        self.log_path = log_path or (config.state_dir / "mosquitto.log")
        self.conf_path = config.state_dir / "mosquitto.conf"
        self.proc: subprocess.Popen | None = None

    @property
    def port(self) -> int:
        return self.config.port

    def start(self, timeout_s: float = 10.0) -> MosquittoProcess:
        """Write the config, start Mosquitto and wait until it accepts connections."""
        if not port_is_free(self.config.port, self.config.bind):
            raise BrokerError(
                f"port {self.config.port} on {self.config.bind} is already in use; "
                "choose another with [broker] port or POSKO_BROKER_PORT"
            )
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        if not (self.keep_conf and self.conf_path.exists()):
            self.conf_path.write_text(self.config.render())
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.config.port, self.config.bind, timeout_s, self.proc)
            if self.config.websockets_port:
                wait_for_port(self.config.websockets_port, "127.0.0.1", timeout_s, self.proc)
            for listener in self.config.listeners:
                wait_for_port(listener.port, listener.bind or "127.0.0.1", timeout_s, self.proc)
        except BrokerError as exc:
            self.stop()
            tail = self.log_tail()
            raise BrokerError(f"mosquitto did not start: {exc}; log: {tail}") from None
        return self

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate (then kill) the broker and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password file and ACL again without dropping anyone
        (how a unit's new password takes effect; `systemctl reload mosquitto` does the same).
        BrokerError when the broker is not running."""
        if self.proc is None or self.proc.poll() is not None:
            raise BrokerError("mosquitto is not running")
        self.proc.send_signal(signal.SIGHUP)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, optionally stay down for a while, start again on the same port."""
        self.stop()
        if down_s:
            time.sleep(down_s)
        self.start()

    def __enter__(self) -> MosquittoProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # python -m posko.broker systemd/mosquitto
    import sys

    for name, text in deployment_files().items():
        (Path(sys.argv[1]) / name).write_text(text)
