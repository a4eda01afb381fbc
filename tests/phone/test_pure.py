"""The phone and console helpers without a server: URLs, group choice, password file, ACL,
announcement payloads."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gateway.acl import render_acl
from hub.console import announcement
from hub.phone import (
    PhoneMember,
    broker_url,
    parse_groups,
    password_lines,
    phone_members_map,
    ws_origin,
)

NOW = dt.datetime(2026, 12, 1, 12, 0)


def _member(mid: str, **kw) -> PhoneMember:
    values = {"name": mid, "groups": "a,b", "expires_at": NOW + dt.timedelta(days=1),
              "password_line": f"{mid}:$7$hash", "revoked_at": None, "enrolled_at": NOW}
    values.update(kw)
    return PhoneMember(id=mid, **values)


def test_broker_url_uses_the_host_the_browser_used() -> None:
    assert broker_url("ws://{host}:8080", "hub.local:5000") == "ws://hub.local:8080"
    assert broker_url("wss://{host}:8443/mqtt", "10.0.0.2") == "wss://10.0.0.2:8443/mqtt"
    assert broker_url("ws://{host}:8080", "[::1]:5000") == "ws://[::1]:8080"
    # Behind the hub's nginx (./setup.sh hub): the page's own origin, port included.
    assert broker_url("wss://{host}/mqtt", "hub.polres.example") == "wss://hub.polres.example/mqtt"
    assert broker_url("wss://{host}/mqtt", "127.0.0.1:8443") == "wss://127.0.0.1:8443/mqtt"
    assert broker_url("wss://{host}/mqtt", "[::1]:8443") == "wss://[::1]:8443/mqtt"
    assert ws_origin("wss://hub.local:8443/mqtt") == "wss://hub.local:8443"


def test_groups_are_checked() -> None:
    assert parse_groups(["b", " a ", "a", ""], {"a", "b"}) == ["a", "b"]
    with pytest.raises(ValueError, match="paling sedikit"):
        parse_groups(["", " "], {"a"})
    with pytest.raises(ValueError, match="tidak dikenal: x"):
        parse_groups(["a", "x"], {"a"})


def test_password_file_keeps_the_base_and_only_active_members() -> None:
    base = "# units\nhub:$7$h\npos-1:$7$p\n"
    members = [_member("hp-ok"), _member("hp-gone", revoked_at=NOW),
               _member("hp-old", expires_at=NOW - dt.timedelta(seconds=1)),
               _member("hp-new", password_line=None), _member("pos-1")]
    text = password_lines(base, members, NOW)
    users = [line.split(":")[0] for line in text.splitlines()]
    assert users == ["hub", "pos-1", "hp-ok"]  # a member cannot take a unit's name
    assert "pos-1:$7$p" in text
    assert phone_members_map(members, NOW) == {"hp-ok": ["a", "b"], "pos-1": ["a", "b"]}


def test_acl_gives_members_their_groups_and_the_console_every_group() -> None:
    acl = render_acl("r", members={"hp-ok": ["a"]}, talk_everywhere=["command-center"])
    assert "user hp-ok\ntopic write r/tg/a/audio/hp-ok\ntopic write r/tg/a/floor/request/hp-ok" in acl
    assert "r/tg/+/audio/hp-ok" not in acl and "pattern write r/tg/+/audio/%u" not in acl
    assert "user command-center\ntopic write r/tg/+/audio/command-center" in acl
    assert "pattern read r/tg/+/announce" in acl
    with pytest.raises(ValueError):
        render_acl("r", talk_everywhere=["bad/id"])


def test_announcement_payload() -> None:
    body = json.loads(announcement("  Jalan   ditutup \n", "Bripka A", 1.5))
    assert body == {"text": "Jalan ditutup", "from": "Bripka A", "time": 1.5}
    with pytest.raises(ValueError, match="isi"):
        announcement("   ", "x", 0)
    with pytest.raises(ValueError, match="280"):
        announcement("a" * 281, "x", 0)


def test_phone_alert_on_the_wire() -> None:
    from posko.messages import Alert, AlertAck, BadMessage, Location

    unit = Alert(id="a1", unit="pos-1", posko="Pos 1", source="panic_button", time=1.0)
    assert json.loads(unit.to_json()) == {"id": "a1", "unit": "pos-1", "posko": "Pos 1",
                                          "source": "panic_button", "text": "", "time": 1.0}
    phone = Alert(id="a2", unit="hp-1", posko="Budi", source="phone_emergency", time=2.0, group="g",
                  location=Location(lat=-8.7, lon=115.2, accuracy_m=12.0, time=1.5))
    back = Alert.from_json(phone.to_json())
    assert back == phone and back.location.accuracy_m == 12.0
    none = Alert.from_json(json.dumps({"id": "a3", "unit": "hp-1", "source": "phone_emergency", "time": 3,
                                       "no_location": "denied"}))
    assert none.location is None and none.no_location == "denied"
    for bad in ({"location": {"lat": 91, "lon": 0, "accuracy_m": 1, "time": 1}},
                {"location": {"lat": 0, "lon": 0, "time": 1}}, {"location": "here"},
                {"no_location": "lost"}):
        with pytest.raises(BadMessage):
            Alert.from_json(json.dumps({"id": "a", "unit": "hp-1", "source": "phone_emergency", "time": 1, **bad}))
    # A kiosk's ack is what it always was; the phone's receipt says its stage.
    assert "stage" not in json.loads(AlertAck(alert_id="a1", officer="Bripka A", time=1.0).to_json())
    receipt = AlertAck.from_json(AlertAck(alert_id="a2", officer="", stage="received").to_json())
    assert receipt.stage == "received"
    assert AlertAck.from_json('{"alert_id": "a1", "officer": "x", "time": 1}').stage == "taken"


def test_a_phone_members_call_off_on_the_wire() -> None:
    from posko import topics
    from posko.messages import AlertAck, AlertCancel, BadMessage

    off = AlertCancel(alert_id="a2", unit="hp-1", time=5.0)
    assert json.loads(off.to_json()) == {"alert_id": "a2", "unit": "hp-1", "time": 5.0}
    assert AlertCancel.from_json(off.to_json()) == off
    for bad in ('{"unit": "hp-1", "time": 1}', '{"alert_id": 3, "unit": "hp-1", "time": 1}', "[]"):
        with pytest.raises(BadMessage):
            AlertCancel.from_json(bad)
    receipt = AlertAck.from_json(AlertAck(alert_id="a2", officer="", stage="cancelled").to_json())
    assert receipt.stage == "cancelled"
    with pytest.raises(BadMessage, match="taken, received or cancelled"):
        AlertAck.from_json('{"alert_id": "a1", "officer": "", "time": 1, "stage": "gone"}')
    assert topics.alert_cancel("hp-1", root="r") == "r/alert/hp-1/cancel"
    assert topics.all_alert_cancels("r") == "r/alert/+/cancel"
    # A member may call off only under their own id.
    assert "pattern write r/alert/%u/cancel" in render_acl("r", members={"hp-1": ["a"]})


def test_location_in_words() -> None:
    from hub.alerts import location_text, map_url
    from hub.models import Alert

    alert = Alert(id="a1", lat=-8.7177, lon=115.1686, accuracy_m=12.4,
                  fix_at=dt.datetime(2026, 12, 1, 7, 2, 11), no_location="")
    assert location_text(alert, "Asia/Jakarta") == "-8.71770, 115.16860 (±12 m, 14:02:11)"
    assert map_url(alert) == "/peta?peringatan=a1"
    denied = Alert(id="a2", lat=None, lon=None, no_location="denied")
    assert location_text(denied, "Asia/Jakarta").startswith("Tanpa lokasi: anggota tidak mengizinkan")
    assert map_url(denied) == ""


def test_the_password_file_holds_the_units_logins_after_the_base_and_before_members() -> None:
    base = "hub:$7$base\narbiter:$7$arb\n"
    text = password_lines(base, [_member("hp-1"), _member("unit-9")], NOW,
                          units=["unit-9:$7$unit", "hub:$7$stolen"])
    assert text.splitlines() == ["hub:$7$base", "arbiter:$7$arb", "unit-9:$7$unit", "hp-1:$7$hash"]
