"""Floor-control JSON messages (ARCHITECTURE.md topic map).

* `FloorRequest` on `tg/{group}/floor/request/{unit}` (QoS 1): a unit or the dashboard asks
  for the floor or gives it back.
* `FloorState` on `tg/{group}/floor/state` (QoS 1, retained): the arbiter's answer, which
  is also what a unit joining the group reads first. `event` says what just happened
  (grant, deny, preempt, release, silence, timeout, offline) and to whom (`event_unit`,
  `event_spurt`), so a requester recognises the answer to its own request.

`from_json` raises BadFloorMessage (a ValueError) naming the field, never anything else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gateway.errors import BadFloorMessage
from gateway.floor import PRIORITY_NAMES, Event
from posko.messages import BadMessage, _dump, _get, _load

ACTIONS = ("request", "release")
EVENTS = tuple(e.value for e in Event)
MAX_SPURT = (1 << 32) - 1


def _fields(payload: bytes | str, kind: str) -> dict[str, Any]:
    try:
        return _load(payload, kind)
    except BadMessage as exc:
        raise BadFloorMessage(str(exc)) from None


def _field(d: dict[str, Any], kind: str, key: str, typ: Any, default: Any = ...) -> Any:
    try:
        return _get(d, kind, key, typ, default)
    except BadMessage as exc:
        raise BadFloorMessage(str(exc)) from None


def _spurt(d: dict[str, Any], kind: str, key: str = "spurt") -> int:
    value = _field(d, kind, key, int, 0)
    if not 0 <= value <= MAX_SPURT:
        raise BadFloorMessage(f"{kind}: field '{key}' must be 0..{MAX_SPURT}")
    return value


def _priority(d: dict[str, Any], kind: str) -> str:
    value = _field(d, kind, "priority", str, "normal")
    if value not in PRIORITY_NAMES:
        raise BadFloorMessage(f"{kind}: field 'priority' must be one of {', '.join(PRIORITY_NAMES)}")
    return value


@dataclass(frozen=True)
class FloorRequest:
    """A unit (or the command center) asks for, or gives back, a group's floor."""

    KIND: ClassVar[str] = "floor request"

    action: str  # "request" | "release"
    spurt: int  # the spurt id the unit will put in its audio frames
    priority: str = "normal"
    time: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        return _dump(self)

    @classmethod
    def from_json(cls, payload: bytes | str) -> FloorRequest:
        d = _fields(payload, cls.KIND)
        action = _field(d, cls.KIND, "action", str)
        if action not in ACTIONS:
            raise BadFloorMessage(f"floor request: field 'action' must be one of {', '.join(ACTIONS)}")
        return cls(action=action, spurt=_spurt(d, cls.KIND), priority=_priority(d, cls.KIND),
                   time=float(_field(d, cls.KIND, "time", (int, float), 0.0)))


@dataclass(frozen=True)
class FloorState:
    """Who holds a group's floor, and what last happened to it."""

    KIND: ClassVar[str] = "floor state"

    group: str
    holder: str = ""  # unit id, "" when the floor is free
    priority: str = "normal"
    spurt: int = 0
    since: float = 0.0  # Unix seconds when the holder got the floor
    event: str = "idle"
    event_unit: str = ""
    event_spurt: int = 0
    arbiter: str = ""  # which arbiter decided (its client id)
    time: float = field(default_factory=time.time)

    @property
    def free(self) -> bool:
        return not self.holder

    def to_json(self) -> bytes:
        return _dump(self)

    @classmethod
    def from_json(cls, payload: bytes | str) -> FloorState:
        d = _fields(payload, cls.KIND)
        k = cls.KIND
        event = _field(d, k, "event", str, "idle")
        if event not in EVENTS:
            raise BadFloorMessage(f"floor state: field 'event' must be one of {', '.join(EVENTS)}")
        return cls(group=_field(d, k, "group", str), holder=_field(d, k, "holder", str, ""),
                   priority=_priority(d, k), spurt=_spurt(d, k),
                   since=float(_field(d, k, "since", (int, float), 0.0)), event=event,
                   event_unit=_field(d, k, "event_unit", str, ""),
                   event_spurt=_spurt(d, k, "event_spurt"),
                   arbiter=_field(d, k, "arbiter", str, ""),
                   time=float(_field(d, k, "time", (int, float), 0.0)))
