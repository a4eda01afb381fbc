"""The test harness itself: each helper that later suites rely on is proven here."""

from __future__ import annotations

import math
import threading
from array import array
from pathlib import Path

import pytest

from tests.support.mqtt import Client


@pytest.mark.broker
def test_broker_publish_subscribe_round_trip(mqtt_client, topic_prefix: str) -> None:
    sub = mqtt_client()
    sub.subscribe(f"{topic_prefix}/#")
    pub = mqtt_client()
    pub.publish(f"{topic_prefix}/unit/u1/status", b'{"ok": true}')
    msg = sub.expect()
    assert msg.topic == f"{topic_prefix}/unit/u1/status"
    assert msg.payload == b'{"ok": true}'


@pytest.mark.broker
def test_broker_with_passwords_and_acl_refuses_forged_publish(broker_factory) -> None:
    acl = (
        "user watcher\ntopic read posko/v1/#\n\n"
        "pattern write posko/v1/unit/%u/#\n"
    )
    broker = broker_factory(users={"kiosk-1": "pw1", "watcher": "pw2"}, acl=acl)
    bad = Client(broker.port, username="kiosk-1", password="wrong")
    assert not bad.wait_connected(3)
    bad.close()

    watcher = Client(broker.port, username="watcher", password="pw2")
    assert watcher.wait_connected()
    watcher.subscribe("posko/v1/#")
    unit = Client(broker.port, username="kiosk-1", password="pw1")
    assert unit.wait_connected()
    unit.publish("posko/v1/unit/kiosk-2/status", b"forged")  # not its own id: dropped
    unit.publish("posko/v1/unit/kiosk-1/status", b"mine")
    msg = watcher.expect()
    assert (msg.topic, msg.payload) == ("posko/v1/unit/kiosk-1/status", b"mine")
    with pytest.raises(AssertionError):
        watcher.expect(timeout=0.5)
    unit.close()
    watcher.close()


@pytest.mark.broker
def test_broker_websocket_listener(broker_factory) -> None:
    broker = broker_factory(websockets=True)
    ws = Client(broker.websockets_port, transport="websockets")
    assert ws.wait_connected()
    ws.subscribe("posko/v1/ws")
    tcp = Client(broker.port)
    assert tcp.wait_connected()
    tcp.publish("posko/v1/ws", b"hello")
    assert ws.expect().payload == b"hello"
    ws.close()
    tcp.close()


@pytest.mark.broker
def test_bridged_broker_carries_posko_topics(broker_factory) -> None:
    central = broker_factory()
    local = broker_factory(bridge_to=central)
    at_center = Client(central.port)
    assert at_center.wait_connected()
    at_center.subscribe("posko/v1/#")
    at_kiosk = Client(local.port)
    assert at_kiosk.wait_connected()
    # The bridge connects asynchronously: publish until the first copy arrives.
    got = None
    for _ in range(50):
        at_kiosk.publish("posko/v1/alert/kiosk-1", b"help", qos=1)
        try:
            got = at_center.expect(timeout=0.2)
            break
        except AssertionError:
            continue
    assert got is not None and got.topic == "posko/v1/alert/kiosk-1"
    at_kiosk.publish("other/topic", b"x")  # outside posko/v1: not bridged
    while True:  # drain duplicates of the retried publish
        try:
            msg = at_center.expect(timeout=0.5)
        except AssertionError:
            break
        assert msg.topic.startswith("posko/v1/")
    at_center.close()
    at_kiosk.close()


SOUND_CHECK = r"""
import pyaudio, sys
pa = pyaudio.PyAudio()
names = [pa.get_device_info_by_index(i)["name"] for i in range(pa.get_device_count())]
assert "default" in names, names
rec = pa.open(format=pyaudio.paInt16, channels=1, rate=16000, input=True, frames_per_buffer=160)
data = rec.read(1600, exception_on_overflow=False)
rec.stop_stream(); rec.close()
out = pa.open(format=pyaudio.paInt16, channels=1, rate=16000, output=True)
out.write(bytes(range(256)) * 16)
out.stop_stream(); out.close()
pa.terminate()
sys.stdout.write(data.hex())
"""


@pytest.mark.audio
def test_alsa_file_sandbox_reads_and_writes_exact_samples(sound) -> None:
    tone = array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / 16000)) for i in range(16000)))
    sound.feed(tone)
    result = sound.run_python(SOUND_CHECK)
    assert result.returncode == 0, result.stderr
    captured = bytes.fromhex(result.stdout)
    assert captured == tone.tobytes()[: len(captured)]
    assert len(captured) == 3200
    assert sound.output.read_bytes()[:4096] == bytes(range(256)) * 16


def test_mock_button_press_fires_callback(mock_pins) -> None:
    from gpiozero import LED, Button

    pressed = threading.Event()
    button = Button(17)
    led = LED(27)
    button.when_pressed = lambda: (pressed.set(), led.on())
    mock_pins.pin(17).drive_low()
    assert pressed.wait(1.0)
    assert led.is_lit
    mock_pins.pin(17).drive_high()
    assert button.wait_for_release(1.0)
    button.close()
    led.close()


@pytest.mark.browser
def test_chromium_renders_a_local_page(new_page, tmp_path: Path, artifacts: Path) -> None:
    page_file = tmp_path / "index.html"
    page_file.write_text("<!doctype html><title>Posko</title><h1 id=h>Selamat datang</h1>")
    page = new_page(800, 480)
    page.goto(page_file.as_uri())
    assert page.text_content("#h") == "Selamat datang"
    shot = artifacts / "foundation-local-page.png"
    page.screenshot(path=str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert page.console_errors == []


def test_state_dir_is_per_test(state_dir: Path) -> None:
    assert state_dir.is_dir() and not any(state_dir.iterdir())
    (state_dir / "marker").write_text("x")
