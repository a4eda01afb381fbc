"""JSON messages on the MQTT topics every part shares (ARCHITECTURE.md topic map).

Each message is a small frozen dataclass with `to_json()` / `from_json()`. `from_json`
raises `BadMessage` (a ValueError) naming the field that is missing or wrong, so a
receiver can drop and count bad input instead of crashing. Talk-group floor and audio
messages belong to `gateway/` and are defined there.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from posko.errors import PoskoError

MAX_MESSAGE_BYTES = 64 * 1024


class BadMessage(PoskoError, ValueError):
    """A message is not valid JSON or lacks a required field."""


def _load(payload: bytes | str, kind: str) -> dict[str, Any]:
    if isinstance(payload, bytes | bytearray):
        if len(payload) > MAX_MESSAGE_BYTES:
            raise BadMessage(f"{kind}: message of {len(payload)} bytes is too large")
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise BadMessage(f"{kind}: not UTF-8") from None
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise BadMessage(f"{kind}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise BadMessage(f"{kind}: expected a JSON object")
    return data


def _get(data: dict[str, Any], kind: str, key: str, typ: type | tuple[type, ...],
         default: Any = ..., ) -> Any:
    if key not in data or data[key] is None:
        if default is ...:
            raise BadMessage(f"{kind}: field '{key}' is missing")
        return default
    value = data[key]
    if isinstance(value, bool) and typ in (int, float, (int, float)):
        raise BadMessage(f"{kind}: field '{key}' must be a number")
    if not isinstance(value, typ):
        raise BadMessage(f"{kind}: field '{key}' has the wrong type")
    if typ == (int, float):
        try:
            value = float(value)
        except OverflowError:
            raise BadMessage(f"{kind}: field '{key}' is out of range") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise BadMessage(f"{kind}: field '{key}' is not a finite number")
    return value


def _dump(obj: Any) -> bytes:
    return json.dumps(asdict(obj), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Location:
    """Where a phone was when it raised an alert (the browser's Geolocation fix)."""

    lat: float  # degrees, -90..90
    lon: float  # degrees, -180..180
    accuracy_m: float  # radius of 68 % confidence, metres
    time: float  # Unix seconds of the fix (not of the alert)

    @classmethod
    def from_dict(cls, d: Any) -> Location:
        if not isinstance(d, dict):
            raise BadMessage("alert: field 'location' must be an object")
        k = "alert location"
        loc = cls(lat=float(_get(d, k, "lat", (int, float))), lon=float(_get(d, k, "lon", (int, float))),
                  accuracy_m=float(_get(d, k, "accuracy_m", (int, float))),
                  time=float(_get(d, k, "time", (int, float))))
        if not (-90 <= loc.lat <= 90 and -180 <= loc.lon <= 180 and 0 <= loc.accuracy_m <= 1e7):
            raise BadMessage("alert: field 'location' is out of range")
        return loc


@dataclass(frozen=True)
class Alert:
    """An emergency from a unit: the panic button, the Darurat screen, an escalated question,
    or a phone's emergency button (with the talk group and, when the member allows it, the
    phone's location; else `no_location` says why there is none)."""

    KIND: ClassVar[str] = "alert"
    SOURCES: ClassVar[tuple[str, ...]] = ("panic_button", "kiosk_darurat", "assistant", "phone_emergency")
    NO_LOCATION: ClassVar[tuple[str, ...]] = ("", "denied", "unavailable", "timeout", "unsupported")

    id: str  # client-made UUID, so an ack and repeats can be matched
    unit: str
    posko: str  # the posko's human name
    source: str  # one of SOURCES
    text: str = ""  # what the resident said or typed (escalations), else ""
    time: float = field(default_factory=time.time)  # Unix seconds
    group: str = ""  # the talk group a phone had selected
    location: Location | None = None
    no_location: str = ""  # one of NO_LOCATION: why a phone sent none

    def to_json(self) -> bytes:
        data = asdict(self)
        # A unit's alert stays what it always was on the wire: the phone's keys only when set.
        for key in ("group", "location", "no_location"):
            if not data[key]:
                del data[key]
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> Alert:
        d = _load(payload, cls.KIND)
        source = _get(d, cls.KIND, "source", str)
        if source not in cls.SOURCES:
            raise BadMessage(f"alert: field 'source' must be one of {', '.join(cls.SOURCES)}")
        raw = d.get("location")
        no_location = _get(d, cls.KIND, "no_location", str, "")
        if no_location not in cls.NO_LOCATION:
            raise BadMessage(f"alert: field 'no_location' must be one of {', '.join(cls.NO_LOCATION[1:])}")
        return cls(id=_get(d, cls.KIND, "id", str), unit=_get(d, cls.KIND, "unit", str),
                   posko=_get(d, cls.KIND, "posko", str, ""), source=source,
                   text=_get(d, cls.KIND, "text", str, "")[:2000],
                   time=float(_get(d, cls.KIND, "time", (int, float))),
                   group=_get(d, cls.KIND, "group", str, "")[:64],
                   location=None if raw is None else Location.from_dict(raw),
                   no_location=no_location)


@dataclass(frozen=True)
class AlertLocation:
    """A phone's newer position while its emergency (`alert_id`) is open: the phone sends one
    when it has moved (hub/static/phone/emergency.js throttles), on `alert/{unit}/location`."""

    KIND: ClassVar[str] = "alert location"

    alert_id: str
    unit: str
    location: Location

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> AlertLocation:
        d = _load(payload, cls.KIND)
        if "location" not in d:
            raise BadMessage("alert location: field 'location' is missing")
        return cls(alert_id=_get(d, cls.KIND, "alert_id", str)[:64], unit=_get(d, cls.KIND, "unit", str),
                   location=Location.from_dict(d["location"]))


@dataclass(frozen=True)
class AlertCancel:
    """A phone member calls off their own emergency (`alert_id`: pressed by mistake, or the
    danger is over), on `alert/{unit}/cancel`. The hub marks the alert and answers with an
    AlertAck of stage "cancelled"; the alert stays open until an officer takes it (a call-off
    may be made under duress: the officer makes sure), but the dashboard stops its alarm."""

    KIND: ClassVar[str] = "alert cancel"

    alert_id: str
    unit: str
    time: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> AlertCancel:
        d = _load(payload, cls.KIND)
        return cls(alert_id=_get(d, cls.KIND, "alert_id", str)[:64], unit=_get(d, cls.KIND, "unit", str),
                   time=float(_get(d, cls.KIND, "time", (int, float))))


@dataclass(frozen=True)
class AlertAck:
    """The hub's answer to an alert: an officer has taken it (stage "taken"), or, for a
    phone's alert, the hub has stored it (stage "received", officer "") or stored its
    member's call-off (stage "cancelled", officer "")."""

    KIND: ClassVar[str] = "alert ack"
    STAGES: ClassVar[tuple[str, ...]] = ("taken", "received", "cancelled")

    alert_id: str
    officer: str  # display name of the officer who acknowledged
    time: float = field(default_factory=time.time)
    stage: str = "taken"

    def to_json(self) -> bytes:
        data = asdict(self)
        if self.stage == "taken":  # what kiosks have always been sent
            del data["stage"]
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> AlertAck:
        d = _load(payload, cls.KIND)
        stage = _get(d, cls.KIND, "stage", str, "taken")
        if stage not in cls.STAGES:
            raise BadMessage("alert ack: field 'stage' must be taken, received or cancelled")
        return cls(alert_id=_get(d, cls.KIND, "alert_id", str),
                   officer=_get(d, cls.KIND, "officer", str),
                   time=float(_get(d, cls.KIND, "time", (int, float))), stage=stage)


@dataclass(frozen=True)
class Heartbeat:
    """A unit's retained status. Parts add their own keys under `parts`."""

    KIND: ClassVar[str] = "status"

    unit: str
    state: str  # "online"; the last-will payload is {"unit": ..., "state": "offline"}
    version: str = ""
    uptime_s: float = 0.0
    disk_free_mb: float = 0.0
    outbox_pending: int = 0
    outbox_oldest_s: float = 0.0  # age of the oldest pending report
    models: dict[str, Any] = field(default_factory=dict)  # e.g. {"asr": {...}, "tts": {...}}
    talk_group: str = ""
    interval_s: float = 30.0  # the hub shows the unit offline after 3 silent intervals
    parts: dict[str, Any] = field(default_factory=dict)  # free-form status per part
    time: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        return _dump(self)

    @classmethod
    def offline(cls, unit: str) -> bytes:
        """The last-will payload."""
        return json.dumps({"unit": unit, "state": "offline"}).encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> Heartbeat:
        d = _load(payload, cls.KIND)
        k = cls.KIND
        return cls(
            unit=_get(d, k, "unit", str), state=_get(d, k, "state", str),
            version=_get(d, k, "version", str, ""),
            uptime_s=float(_get(d, k, "uptime_s", (int, float), 0.0)),
            disk_free_mb=float(_get(d, k, "disk_free_mb", (int, float), 0.0)),
            outbox_pending=int(_get(d, k, "outbox_pending", int, 0)),
            outbox_oldest_s=float(_get(d, k, "outbox_oldest_s", (int, float), 0.0)),
            models=_get(d, k, "models", dict, {}),
            talk_group=_get(d, k, "talk_group", str, ""),
            interval_s=float(_get(d, k, "interval_s", (int, float), 30.0)),
            parts=_get(d, k, "parts", dict, {}),
            time=float(_get(d, k, "time", (int, float), 0.0)),
        )


@dataclass(frozen=True)
class AssistantEvent:
    """What the unit's voice assistant is doing, for the kiosk screen.

    type: listening | partial | transcript | answer | speaking | done | error
    For `answer`, `reply` holds the brain's reply as a dict (action, text, speech, entry,
    confidence, suggestions). `session` ties the events of one question together.
    """

    KIND: ClassVar[str] = "assistant event"
    TYPES: ClassVar[tuple[str, ...]] = (
        "listening", "partial", "transcript", "answer", "speaking", "done", "error")

    type: str
    session: str
    text: str = ""
    reply: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        return _dump(self)

    @classmethod
    def from_json(cls, payload: bytes | str) -> AssistantEvent:
        d = _load(payload, cls.KIND)
        typ = _get(d, cls.KIND, "type", str)
        if typ not in cls.TYPES:
            raise BadMessage(f"assistant event: field 'type' must be one of {', '.join(cls.TYPES)}")
        return cls(type=typ, session=_get(d, cls.KIND, "session", str),
                   text=_get(d, cls.KIND, "text", str, ""),
                   reply=_get(d, cls.KIND, "reply", dict, {}),
                   time=float(_get(d, cls.KIND, "time", (int, float), 0.0)))


@dataclass(frozen=True)
class AssistantCommand:
    """From the kiosk screen to the unit: listen, stop, or say a text aloud."""

    KIND: ClassVar[str] = "assistant command"
    COMMANDS: ClassVar[tuple[str, ...]] = ("listen", "stop", "say")

    command: str
    session: str = ""
    text: str = ""  # for "say"
    lang: str = "id"

    def to_json(self) -> bytes:
        return _dump(self)

    @classmethod
    def from_json(cls, payload: bytes | str) -> AssistantCommand:
        d = _load(payload, cls.KIND)
        command = _get(d, cls.KIND, "command", str)
        if command not in cls.COMMANDS:
            raise BadMessage(f"assistant command: field 'command' must be one of {', '.join(cls.COMMANDS)}")
        lang = _get(d, cls.KIND, "lang", str, "id")
        if lang not in ("id", "en"):
            raise BadMessage("assistant command: field 'lang' must be 'id' or 'en'")
        return cls(command=command, session=_get(d, cls.KIND, "session", str, ""),
                   text=_get(d, cls.KIND, "text", str, "")[:2000], lang=lang)


@dataclass(frozen=True)
class KbCurrent:
    """The hub's retained pointer to the current knowledge-base bundle."""

    KIND: ClassVar[str] = "kb current"

    version: str
    sha256: str
    path: str  # HTTP path on the hub

    def to_json(self) -> bytes:
        return _dump(self)

    @classmethod
    def from_json(cls, payload: bytes | str) -> KbCurrent:
        d = _load(payload, cls.KIND)
        return cls(version=_get(d, cls.KIND, "version", str),
                   sha256=_get(d, cls.KIND, "sha256", str), path=_get(d, cls.KIND, "path", str))


@dataclass(frozen=True)
class ReleaseCurrent:
    """The hub's retained pointer to the current Posko release (a wheel), on release/current."""

    KIND: ClassVar[str] = "release current"

    version: str
    sha256: str  # of the wheel
    path: str  # HTTP path of the wheel on the hub
    size: int  # bytes

    def to_json(self) -> bytes:
        return _dump(self)

    @classmethod
    def from_json(cls, payload: bytes | str) -> ReleaseCurrent:
        d = _load(payload, cls.KIND)
        msg = cls(version=_get(d, cls.KIND, "version", str), sha256=_get(d, cls.KIND, "sha256", str),
                  path=_get(d, cls.KIND, "path", str), size=_get(d, cls.KIND, "size", int))
        if len(msg.sha256) != 64 or not msg.path.startswith("/") or msg.size <= 0:
            raise BadMessage(f"{cls.KIND}: sha256, path or size is not valid")
        return msg
