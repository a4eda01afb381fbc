"""Shared MQTT messages: round trips and clear rejection of bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posko import topics
from posko.messages import (
    Alert,
    AlertAck,
    AssistantCommand,
    AssistantEvent,
    BadMessage,
    Heartbeat,
    KbCurrent,
)


@pytest.mark.parametrize("msg", [
    Alert(id="a1", unit="kiosk-1", posko="Posko Alun-alun", source="panic_button"),
    AlertAck(alert_id="a1", officer="Bripka Aziz"),
    Heartbeat(unit="kiosk-1", state="online", outbox_pending=37, models={"asr": {"name": "x"}}),
    AssistantEvent(type="answer", session="s1", reply={"action": "answer", "text": "Rp30.000"}),
    AssistantCommand(command="listen", session="s1"),
    KbCurrent(version="3", sha256="ab" * 32, path="/api/v1/kb/3"),
])
def test_round_trip(msg) -> None:
    assert type(msg).from_json(msg.to_json()) == msg


@pytest.mark.parametrize(("cls", "payload", "fragment"), [
    (Alert, b"not json", "not JSON"),
    (Alert, b"[]", "expected a JSON object"),
    (Alert, b'{"id": "a", "unit": "u", "source": "x", "time": 1}', "field 'source' must be one of"),
    (Alert, b'{"unit": "u", "source": "panic_button", "time": 1}', "field 'id' is missing"),
    (AlertAck, b'{"alert_id": 5, "officer": "x", "time": 1}', "field 'alert_id' has the wrong type"),
    (Heartbeat, b'{"unit": "u"}', "field 'state' is missing"),
    (AssistantCommand, b'{"command": "dance"}', "field 'command' must be one of"),
    (AssistantEvent, b'{"type": "answer"}', "field 'session' is missing"),
    (KbCurrent, b"\xff\xfe", "not UTF-8"),
    (Alert, b"{" + b" " * 70000 + b"}", "too large"),
])
def test_bad_messages_name_the_problem(cls, payload: bytes, fragment: str) -> None:
    with pytest.raises(BadMessage) as err:
        cls.from_json(payload)
    assert fragment in str(err.value)


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_a_receiver(data: bytes) -> None:
    for cls in (Alert, AlertAck, Heartbeat, AssistantEvent, AssistantCommand, KbCurrent):
        try:
            cls.from_json(data)
        except BadMessage:
            pass


def test_topics_follow_the_map() -> None:
    assert topics.unit_status("kiosk-1") == "posko/v1/unit/kiosk-1/status"
    assert topics.tg_audio("batang-kota", "u1") == "posko/v1/tg/batang-kota/audio/u1"
    assert topics.alert_ack("u1", root="x/y") == "x/y/alert/u1/ack"
    assert topics.split("posko/v1/alert/u1") == ["alert", "u1"]
    for bad in ("a/b", "+", "#", "", "x" * 65):
        with pytest.raises(ValueError):
            topics.unit_status(bad)


def test_huge_or_non_finite_numbers_are_bad_messages() -> None:
    for payload in (b'{"alert_id": "a", "officer": "o", "time": 1' + b"0" * 400 + b"}",
                    b'{"alert_id": "a", "officer": "o", "time": NaN}'):
        with pytest.raises(BadMessage):
            AlertAck.from_json(payload)
