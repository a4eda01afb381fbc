"""Floor request and state JSON: round trips and precise errors."""

from __future__ import annotations

import pytest

from gateway.errors import BadFloorMessage
from gateway.messages import FloorRequest, FloorState


def test_round_trips() -> None:
    req = FloorRequest(action="request", spurt=42, priority="command", time=1.5)
    assert FloorRequest.from_json(req.to_json()) == req
    state = FloorState(group="batang-kota", holder="dewi", priority="normal", spurt=42, since=1.0,
                       event="grant", event_unit="dewi", event_spurt=42, arbiter="a", time=2.0)
    assert FloorState.from_json(state.to_json()) == state
    assert FloorState(group="g").free


@pytest.mark.parametrize("payload, field", [
    (b'{"spurt": 1}', "action"),
    (b'{"action": "grab", "spurt": 1}', "action"),
    (b'{"action": "request", "spurt": -1}', "spurt"),
    (b'{"action": "request", "spurt": 4294967296}', "spurt"),
    (b'{"action": "request", "spurt": "1"}', "spurt"),
    (b'{"action": "request", "spurt": 1, "priority": "boss"}', "priority"),
    (b"[1, 2]", "JSON object"),
    (b"\xff\xfe", "UTF-8"),
    (b"not json", "JSON"),
])
def test_bad_requests_name_the_field(payload: bytes, field: str) -> None:
    with pytest.raises(BadFloorMessage, match=field):
        FloorRequest.from_json(payload)


def test_bad_state_names_the_field() -> None:
    with pytest.raises(BadFloorMessage, match="event"):
        FloorState.from_json(b'{"group": "g", "event": "party"}')
    with pytest.raises(BadFloorMessage, match="group"):
        FloorState.from_json(b'{"holder": "x"}')
