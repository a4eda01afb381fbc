"""MQTT topic names and the `+`/`#` patterns that match them (ARCHITECTURE.md topic map).

Every topic is built here so that a renamed topic changes in one place. `root` is the
configured prefix (`posko/v1` by default).
"""

from __future__ import annotations

import re

ROOT = "posko/v1"

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


def check_id(kind: str, value: str) -> str:
    """Raise ValueError unless value is a safe topic level (no '/', '+', '#')."""
    if not _ID.match(value or ""):
        raise ValueError(f"{kind} id must be 1-64 letters, digits, '-' or '_', got {value!r}")
    return value


def unit_status(unit: str, root: str = ROOT) -> str:
    return f"{root}/unit/{check_id('unit', unit)}/status"


def assistant_event(unit: str, root: str = ROOT) -> str:
    return f"{root}/unit/{check_id('unit', unit)}/assistant/event"


def assistant_command(unit: str, root: str = ROOT) -> str:
    return f"{root}/unit/{check_id('unit', unit)}/assistant/command"


def tg_audio(group: str, unit: str, root: str = ROOT) -> str:
    return f"{root}/tg/{check_id('group', group)}/audio/{check_id('unit', unit)}"


def tg_floor_request(group: str, unit: str, root: str = ROOT) -> str:
    return f"{root}/tg/{check_id('group', group)}/floor/request/{check_id('unit', unit)}"


def tg_announce(group: str, root: str = ROOT) -> str:
    """The dispatcher's short text announcements to a group (units speak them, phones show them)."""
    return f"{root}/tg/{check_id('group', group)}/announce"


def tg_floor_state(group: str, root: str = ROOT) -> str:
    return f"{root}/tg/{check_id('group', group)}/floor/state"


def arbiter_status(root: str = ROOT) -> str:
    """Retained "online"/"offline" (last-will) of the talk-group floor arbiter."""
    return f"{root}/arbiter/status"


def alert(unit: str, root: str = ROOT) -> str:
    return f"{root}/alert/{check_id('unit', unit)}"


def alert_ack(unit: str, root: str = ROOT) -> str:
    return f"{root}/alert/{check_id('unit', unit)}/ack"


def alert_location(unit: str, root: str = ROOT) -> str:
    """A phone's newer position while its emergency is open (posko.messages.AlertLocation)."""
    return f"{root}/alert/{check_id('unit', unit)}/location"


def alert_cancel(unit: str, root: str = ROOT) -> str:
    """A phone member's call-off of their own emergency (posko.messages.AlertCancel)."""
    return f"{root}/alert/{check_id('unit', unit)}/cancel"


def kb_current(root: str = ROOT) -> str:
    return f"{root}/kb/current"


def release_current(root: str = ROOT) -> str:
    return f"{root}/release/current"


# Subscription patterns.
def all_unit_status(root: str = ROOT) -> str:
    return f"{root}/unit/+/status"


def all_alerts(root: str = ROOT) -> str:
    return f"{root}/alert/+"


def all_alert_locations(root: str = ROOT) -> str:
    return f"{root}/alert/+/location"


def all_alert_cancels(root: str = ROOT) -> str:
    return f"{root}/alert/+/cancel"


def all_alert_acks(root: str = ROOT) -> str:
    return f"{root}/alert/+/ack"


def group_audio(group: str, root: str = ROOT) -> str:
    return f"{root}/tg/{check_id('group', group)}/audio/+"


def group_floor_requests(group: str, root: str = ROOT) -> str:
    return f"{root}/tg/{check_id('group', group)}/floor/request/+"


def all_floor_requests(root: str = ROOT) -> str:
    return f"{root}/tg/+/floor/request/+"


def all_audio(root: str = ROOT) -> str:
    return f"{root}/tg/+/audio/+"


def split(topic: str, root: str = ROOT) -> list[str]:
    """The levels after the root; ValueError for a topic outside it."""
    prefix = root + "/"
    if not topic.startswith(prefix):
        raise ValueError(f"topic {topic!r} is not under {root!r}")
    return topic[len(prefix):].split("/")
