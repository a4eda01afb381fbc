"""Settings every Posko process shares: identity, state, the MQTT connection, the dev broker."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class PoskoSettings:
    """Who this installation is and where it keeps its state."""

    state_dir: str = setting("var", "Directory for all state (databases, outbox, recordings, models, logs). Relative paths are relative to the config file's folder, or to the working directory without one.")
    unit_id: str = setting("dev-kiosk-1", "This unit's id; also its MQTT user name. Letters, digits and '-'.")
    posko_name: str = setting("Posko Alun-alun", "Name of the posko shown to residents and officers.")
    language: str = setting("id", "Default language of screens and speech.", choices=("id", "en"))
    log_level: str = setting("INFO", "Logging level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass(frozen=True)
class MqttSettings:
    """How a process reaches its (local) MQTT broker."""

    host: str = setting("127.0.0.1", "Broker host name or address.")
    port: int = setting(18830, "Broker TCP port.", min=1, max=65535)
    username: str = setting("", "MQTT user name (the unit id on units). Empty: anonymous.")
    password: str = setting("", "MQTT password.", secret=True)
    keepalive_s: int = setting(15, "MQTT keep-alive interval.", unit="s", min=5, max=600)
    topic_root: str = setting("posko/v1", "Prefix of every Posko topic.")


@dataclass(frozen=True)
class BrokerSettings:
    """The Mosquitto that `posko up` starts for the dev stack."""

    binary: str = setting("mosquitto", "Mosquitto executable (name on PATH or absolute path).")
    bind: str = setting("127.0.0.1", "Address the dev broker listens on.")
    port: int = setting(18830, "TCP port of the dev broker; not 1883, so it never collides with a system broker.", min=1, max=65535)
    websockets_port: int = setting(0, "WebSocket listener port for browsers; 0 disables it.", min=0, max=65535)
