"""The unit's PTT panel on gpiozero mock pins, wired to the talk-group client."""

from __future__ import annotations

import dataclasses

import pytest

from firmware.agent import UnitContext
from firmware.panel import NoPanel
from firmware.ptt_unit import PttComponent, PttPanelError, button_options, make_component
from posko.config import load_settings
from posko.mqtt import MqttLink
from tests.gateway.conftest import ListSource, RecordingSink, tone_frames, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def test_wiring_is_checked_before_anything_starts() -> None:
    settings = load_settings(environ={"POSKO_PTT_PTT_PULL": "up", "POSKO_PTT_PTT_ACTIVE": "high"})
    with pytest.raises(PttPanelError, match="pull-up"):
        make_component(settings)
    down = load_settings(environ={"POSKO_PTT_PTT_PULL": "down", "POSKO_PTT_PTT_ACTIVE": "high"})
    assert button_options(down.ptt) == {"pull_up": False}
    external = load_settings(environ={"POSKO_PTT_PTT_PULL": "none", "POSKO_PTT_PTT_ACTIVE": "low"})
    assert button_options(external.ptt) == {"pull_up": None, "active_state": False}


@pytest.fixture
def unit_component(mock_pins, mqtt_settings, net, tmp_path):
    env = {"POSKO_MQTT_PORT": str(mqtt_settings.port), "POSKO_MQTT_TOPIC_ROOT": mqtt_settings.topic_root,
           "POSKO_POSKO_UNIT_ID": "pos-alun-alun", "POSKO_POSKO_STATE_DIR": str(tmp_path / "var"),
           "POSKO_PTT_GROUPS": "batang-kota,ojol-batang", "POSKO_PTT_BUZZER_PIN": "25"}
    settings = load_settings(environ=env)
    link = MqttLink(settings.mqtt, "pos-alun-alun-agent").start()
    assert link.wait_connected(5)
    events: list = []
    sink = RecordingSink()
    comp = PttComponent(settings, sink=sink, source_factory=lambda: ListSource(tone_frames(0.6)),
                        trace=lambda e, **f: events.append((e, f)))
    ctx = UnitContext(settings, link, NoPanel(), settings.state_dir)
    comp.start(ctx)
    yield comp, ctx, mock_pins, events
    comp.stop()
    link.stop()


def test_button_edges_drive_the_floor_and_the_leds(unit_component, net) -> None:
    comp, ctx, pins, events = unit_component
    net.arbiter()
    assert wait_until(lambda: comp.status()["mode"] == "arbiter", 5)
    panel = comp._panel
    assert panel.online_led.is_lit or wait_until(lambda: panel.online_led.is_lit, 2)
    listener = net.unit("pos-2")
    pins.pin(17).drive_low()  # press (pull-up, active low)
    assert wait_until(lambda: panel.tx_led.is_lit, 2)
    assert wait_until(lambda: listener.client.counters.spurts_heard == 1, 3)
    pins.pin(17).drive_high()  # release
    assert wait_until(lambda: not panel.tx_led.is_lit, 2)
    assert wait_until(lambda: listener.seen("rx_end"), 3)
    assert [e for e, _ in events if e in ("grant", "tx_end")] == ["grant", "tx_end"]


def test_receiving_lights_rx_and_holds_the_speech_gate(unit_component, net) -> None:
    comp, ctx, pins, events = unit_component
    net.arbiter()
    talker = net.unit("dewi", lambda: ListSource(tone_frames(1.0)))
    assert wait_until(lambda: comp.status()["mode"] == "arbiter", 5)
    talker.client.press()
    assert wait_until(lambda: comp._panel.rx_led.is_lit, 3)
    assert ctx.speech_gate.is_set()  # the kiosk's TTS pauses while the radio speaks
    assert wait_until(lambda: not comp._panel.rx_led.is_lit, 4)
    assert wait_until(lambda: not ctx.speech_gate.is_set(), 2)
    assert comp._sink.audible() >= 40  # most of 1 s of dewi's tone reached the speaker (50 frames; a loaded machine drops a few at the start)


def test_busy_blinks_rx_and_beeps_and_next_group_cycles(unit_component, net) -> None:
    comp, ctx, pins, events = unit_component
    net.arbiter()
    talker = net.unit("dewi", lambda: ListSource(tone_frames(2.0)))
    assert wait_until(lambda: comp.status()["mode"] == "arbiter", 5)
    talker.client.press()
    assert wait_until(lambda: talker.seen("grant"), 2)
    pins.pin(17).drive_low()
    assert wait_until(lambda: [e for e, _ in events if e == "deny"], 2)
    history = pins.pin(23).states  # the RX LED pin toggled: blinking
    assert wait_until(lambda: len(pins.pin(23).states) >= 4, 2), history
    assert wait_until(lambda: len(pins.pin(25).states) >= 4, 2)  # the buzzer beeped
    pins.pin(17).drive_high()
    assert comp.client.group == "batang-kota"
    pins.pin(27).drive_low()
    pins.pin(27).drive_high()
    assert wait_until(lambda: comp.client.group == "ojol-batang", 2)
    assert comp.status()["group"] == "ojol-batang"
    assert dataclasses.asdict(comp.client.counters)["denials"] == 1


@pytest.fixture
def radio_gateway(mock_pins, mqtt_settings, net, tmp_path):
    """A unit wired to an analogue radio: COS on GPIO 26 through an optocoupler (active low)."""
    env = {"POSKO_MQTT_PORT": str(mqtt_settings.port), "POSKO_MQTT_TOPIC_ROOT": mqtt_settings.topic_root,
           "POSKO_POSKO_UNIT_ID": "radio-gw-1", "POSKO_POSKO_STATE_DIR": str(tmp_path / "var"),
           "POSKO_PTT_COS_PIN": "26"}
    settings = load_settings(environ=env)
    link = MqttLink(settings.mqtt, "radio-gw-1-agent").start()
    assert link.wait_connected(5)
    comp = PttComponent(settings, sink=RecordingSink(), source_factory=lambda: ListSource(tone_frames(0.6)))
    comp.start(UnitContext(settings, link, NoPanel(), settings.state_dir))
    yield comp, mock_pins
    comp.stop()
    link.stop()


def test_the_radios_squelch_keys_the_talk_group_like_the_ptt_button(radio_gateway, net) -> None:
    comp, pins = radio_gateway
    net.arbiter()
    assert wait_until(lambda: comp.status()["mode"] == "arbiter", 5)
    listener = net.unit("pos-3")
    assert pins.pin(26).state  # idle: the pull-up holds the line high (squelch closed)
    pins.pin(26).drive_low()  # the radio hears someone: the optocoupler pulls the line low
    assert wait_until(lambda: comp._panel.tx_led.is_lit, 2)
    assert wait_until(lambda: listener.client.counters.spurts_heard == 1, 3)
    pins.pin(26).drive_high()  # squelch closes
    assert wait_until(lambda: not comp._panel.tx_led.is_lit, 2)
