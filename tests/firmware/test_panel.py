"""The physical panel on gpiozero's mock pins, with a real broker.

Panic and escalation run the agent in this process (no sound needed); the Tanya button
runs in a child process because it opens the real microphone through the sound sandbox.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from firmware.agent import Agent
from firmware.voice_component import VoiceComponent
from posko.config import load_settings
from posko.messages import Alert, AssistantEvent
from tests.firmware.agentproc import collect_events
from tests.firmware.conftest import silence

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def settings_for(broker, root: str, state, **extra: str):
    env = {"POSKO_MQTT_PORT": str(broker.port), "POSKO_MQTT_TOPIC_ROOT": root,
           "POSKO_POSKO_UNIT_ID": "kiosk-panel-1", "POSKO_POSKO_POSKO_NAME": "Posko Alun-alun Batang",
           "POSKO_POSKO_STATE_DIR": str(state), "POSKO_UNIT_PIN_FACTORY": "mock",
           "POSKO_UNIT_PANIC_HOLD_S": "0.2", "POSKO_UNIT_HEARTBEAT_S": "1",
           "POSKO_VOICE_INPUT_DEVICE": "", "POSKO_VOICE_OUTPUT_DEVICE": "", **extra}
    return load_settings(path=None, environ=env)


def test_holding_the_panic_button_publishes_an_alert(mock_pins, broker, mqtt_client, topic_prefix, tmp_path) -> None:
    settings = settings_for(broker, topic_prefix, tmp_path)
    watcher = mqtt_client()
    watcher.subscribe(f"{topic_prefix}/alert/#")
    agent = Agent(settings, components=[]).start()
    try:
        assert agent.link.wait_connected(5)
        pin = mock_pins.pin(settings.unit.panic_pin)
        pin.drive_low()
        msg = watcher.expect(timeout=5)
        pin.drive_high()
        alert = Alert.from_json(msg.payload)
        assert msg.topic == f"{topic_prefix}/alert/kiosk-panel-1"
        assert alert.source == "panic_button" and alert.unit == "kiosk-panel-1"
        assert alert.posko == "Posko Alun-alun Batang" and msg.qos == 1
    finally:
        agent.shutdown()


def test_escalated_question_publishes_an_alert_with_the_words(mock_pins, broker, mqtt_client,
                                                              topic_prefix, tmp_path, tiny_synth) -> None:
    settings = settings_for(broker, topic_prefix, tmp_path)
    watcher = mqtt_client()
    watcher.subscribe(f"{topic_prefix}/unit/#")
    alerts = mqtt_client()
    alerts.subscribe(f"{topic_prefix}/alert/#")
    voice = VoiceComponent(synth=tiny_synth)  # the real brain, loaded from the shipped KB
    agent = Agent(settings, components=[voice]).start()
    try:
        assert voice.ready.wait(60) and voice.pipeline is not None, voice.load_error
        assert agent.link.wait_connected(5)  # events are QoS 0: sent before, they are lost
        question = "Tolong, ada kecelakaan di depan, orangnya berdarah!"
        session = voice.ask_text(question)
        events = collect_events(watcher, session)
        answer = next(e for e in events if e.type == "answer")
        assert answer.reply["action"] == "escalate"
        alert = _wait_alert(alerts, topic_prefix)
        assert alert.source == "assistant" and alert.text == question
    finally:
        agent.shutdown()


def _wait_alert(client, root: str) -> Alert:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        msg = client.expect(timeout=5)
        if msg.topic == f"{root}/alert/kiosk-panel-1":
            return Alert.from_json(msg.payload)
    raise AssertionError("no alert")


TANYA_SCRIPT = r"""
import json, sys, threading, time
from posko.config import load_settings
from firmware.agent import Agent
from gpiozero import Device
settings = load_settings()
agent = Agent(settings)
threading.Thread(target=agent.run, daemon=True).start()
voice = agent.component("voice")
assert voice.ready.wait(90), "voice not ready"
assert voice.pipeline is not None, voice.load_error
led = agent.panel.listening_led
led_pin = Device.pin_factory.pin(settings.unit.listening_led_pin)
led_pin.clear_states()
pin = Device.pin_factory.pin(settings.unit.tanya_pin)
pin.drive_low(); time.sleep(0.05); pin.drive_high()
deadline = time.monotonic() + 30
while not voice.busy and time.monotonic() < deadline:
    time.sleep(0.005)
deadline = time.monotonic() + 60
while voice.busy and time.monotonic() < deadline:
    time.sleep(0.05)
# The mock pin keeps every change: the LED went on while listening, and off again.
print("LED_STATES", [bool(s.state) for s in led_pin.states], flush=True)
print("LED_AFTER", led.is_lit, flush=True)
agent.stop(); time.sleep(0.5)
"""


@pytest.mark.audio
@pytest.mark.slow
def test_tanya_button_starts_listening_and_lights_the_led(sound, broker, mqtt_client, topic_prefix,
                                                          tmp_path, ko_model_dir, tiny_voice,
                                                          korean_phrase_raw) -> None:
    watcher = mqtt_client()
    watcher.subscribe(f"{topic_prefix}/unit/kiosk-panel-1/assistant/event")
    sound.feed(silence(0.3) + korean_phrase_raw * 2 + silence(1.5))
    env = {"POSKO_MQTT_PORT": str(broker.port), "POSKO_MQTT_TOPIC_ROOT": topic_prefix,
           "POSKO_POSKO_UNIT_ID": "kiosk-panel-1", "POSKO_POSKO_STATE_DIR": str(tmp_path / "var"),
           "POSKO_UNIT_PIN_FACTORY": "mock", "POSKO_VOICE_ASR_MODEL": str(ko_model_dir),
           "POSKO_VOICE_TTS_VOICE": str(tiny_voice), "POSKO_VOICE_GRAMMAR_BIAS": "false",
           "POSKO_VOICE_CHIME": "false"}
    result = sound.run_python(TANYA_SCRIPT, timeout=110, **env)
    assert "LED_STATES [False, True, False]" in result.stdout, result.stdout + result.stderr[-3000:]
    assert "LED_AFTER False" in result.stdout
    first = AssistantEvent.from_json(watcher.expect(timeout=5).payload)
    assert first.type == "listening" and first.text == "button"
    session = first.session
    rest = collect_events(watcher, session)
    assert "transcript" in [e.type for e in rest]
    assert json.loads(json.dumps(first.reply)) == {}
    assert uuid  # sessions are made by the unit when the button starts them


def test_systemd_is_told_ready_and_alive(mock_pins, broker, topic_prefix, tmp_path, monkeypatch) -> None:
    import socket

    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    agent = Agent(settings_for(broker, topic_prefix, tmp_path), components=[])
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        got = {sock.recv(256).decode() for _ in range(2)}
        assert "READY=1" in got and "WATCHDOG=1" in got
    finally:
        agent.stop()
        runner.join(10)
        sock.close()
    assert not runner.is_alive()


@pytest.mark.slow
def test_a_killed_unit_is_reported_offline_by_its_last_will(broker, mqtt_client, topic_prefix, tmp_path, sound) -> None:
    import os
    import signal

    from tests.firmware.agentproc import UnitProcess, unit_env, wait_heartbeat

    watcher = mqtt_client()
    watcher.subscribe(f"{topic_prefix}/unit/kiosk-will-1/status")
    env = unit_env(sound, broker, topic_prefix, "kiosk-will-1", tmp_path / "var")
    env.update({"POSKO_UNIT_ASSISTANT_ENABLED": "false", "POSKO_MQTT_KEEPALIVE_S": "5"})
    proc = UnitProcess(env, tmp_path / "unit.log")
    try:
        wait_heartbeat(watcher, proc, lambda hb: hb.unit == "kiosk-will-1", timeout=30)
        os.killpg(proc.proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msg = watcher.expect(timeout=20)
            if json.loads(msg.payload).get("state") == "offline":
                break
        else:
            raise AssertionError("no offline status after the kill")
    finally:
        proc.stop()
    late = mqtt_client()
    late.subscribe(f"{topic_prefix}/unit/kiosk-will-1/status")
    retained = late.expect(timeout=5)
    assert retained.retain and json.loads(retained.payload) == {"unit": "kiosk-will-1", "state": "offline"}


class SlowSpeaker:
    """Plays each sentence for ~0.3 s (like a sound card), so a press can come mid-answer."""

    def __init__(self) -> None:
        self.sentences = 0
        self.first = threading.Event()

    def play(self, chunks, rate_hz, *, stop=None, gate=None, on_first_audio=None) -> float:
        from firmware.audio.streams import PlaybackStopped

        for _chunk in chunks:
            if on_first_audio and self.sentences == 0:
                on_first_audio()
            self.sentences += 1
            self.first.set()
            for _ in range(30):
                if stop is not None and stop.is_set():
                    raise PlaybackStopped()
                time.sleep(0.01)
        return 0.0


def test_pressing_tanya_again_stops_the_answer(mock_pins, broker, mqtt_client, topic_prefix, tmp_path,
                                               ko_recognizer, tiny_synth, korean_phrase_raw, scripted_brain) -> None:
    from tests.firmware.conftest import MemoryMicrophone, Reply

    long = Reply("answer", "x", " ".join(f"Kalimat nomor {i}." for i in range(1, 30)))
    speaker = SlowSpeaker()
    voice = VoiceComponent(brain=scripted_brain(default=long), recognizer=ko_recognizer, synth=tiny_synth,
                           mic=MemoryMicrophone(silence(0.3) + korean_phrase_raw + silence(1.5)),
                           speaker=speaker)
    settings = settings_for(broker, topic_prefix, tmp_path, POSKO_VOICE_CHIME="false")
    watcher = mqtt_client()
    watcher.subscribe(f"{topic_prefix}/unit/kiosk-panel-1/assistant/event")
    agent = Agent(settings, components=[voice]).start()
    try:
        assert voice.ready.wait(60), voice.load_error
        # The screen's events are QoS 0: pressed before the link is up, "listening" is lost
        # (seen under load: the first event was "partial").
        assert agent.link.wait_connected(5)
        pin = mock_pins.pin(settings.unit.tanya_pin)
        pin.drive_low()
        pin.drive_high()
        assert speaker.first.wait(30), "the answer never started"
        assert voice.busy
        pin.drive_low()  # pressed again while speaking
        pin.drive_high()
        first = AssistantEvent.from_json(watcher.expect(timeout=5).payload)
        events = [first, *collect_events(watcher, first.session)]
        assert [e.type for e in events][0] == "listening" and events[-1].type == "done"
        assert "speaking" in [e.type for e in events]
        assert speaker.sentences < 29  # stopped well before the end of the answer
        deadline = time.monotonic() + 5
        while voice.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not voice.busy and not agent.panel.listening_led.is_lit
    finally:
        agent.shutdown()


class FakePtt:
    """A component the way push-to-talk plugs in (UnitComponent protocol)."""

    name = "ptt"

    def __init__(self) -> None:
        self.ctx = None
        self.stopped = False

    def start(self, ctx) -> None:
        self.ctx = ctx

    def stop(self) -> None:
        self.stopped = True

    def status(self) -> dict:
        return {"group": "ojol-batang", "mode": "test"}


def test_components_share_the_context_and_report_in_the_heartbeat(mock_pins, broker, topic_prefix, tmp_path) -> None:
    from firmware.agent import UnitComponent

    ptt = FakePtt()
    assert isinstance(ptt, UnitComponent)
    agent = Agent(settings_for(broker, topic_prefix, tmp_path), components=[ptt]).start()
    try:
        ctx = ptt.ctx
        assert ctx.link is agent.link and ctx.unit == "kiosk-panel-1" and not ctx.speech_gate.is_set()
        ctx.status_led.problem("radio")
        hb = agent.heartbeat()
        assert hb.parts["ptt"] == {"group": "ojol-batang", "mode": "test"}
        assert hb.talk_group == "ojol-batang"
        assert hb.parts["agent"]["status_led"] == "blinking" and hb.parts["agent"]["problems"] == ["radio"]
        ctx.status_led.resolved("radio")
        assert agent.heartbeat().parts["agent"]["status_led"] == "steady"
    finally:
        agent.shutdown()
    assert ptt.stopped


def test_without_models_the_unit_says_so_and_falls_back_to_espeak(mock_pins, broker, topic_prefix, tmp_path, caplog) -> None:
    caplog.set_level("WARNING")
    voice = VoiceComponent()
    agent = Agent(settings_for(broker, topic_prefix, tmp_path), components=[voice]).start()
    try:
        assert voice.ready.wait(60) and voice.pipeline is not None, voice.load_error
        hb = agent.heartbeat()
        assert hb.models["tts"]["engine"] == "espeak-ng" and hb.models["tts"]["fallback"] is True
        assert hb.parts["voice"]["tts_fallback"] is True and hb.parts["voice"]["typed_only"] is True
        assert hb.models["asr"] == {"name": None, "mode": "not installed"}
        assert "FALLBACK" in caplog.text and "typed questions still work" in caplog.text
    finally:
        agent.shutdown()


def test_reload_takes_a_new_knowledge_base_and_a_broken_one_is_refused(mock_pins, broker, topic_prefix,
                                                                        tmp_path, tiny_synth) -> None:
    import shutil
    from pathlib import Path

    import assistant

    kb = tmp_path / "kb"
    shutil.copytree(Path(assistant.__file__).parent / "kb", kb)
    settings = settings_for(broker, topic_prefix, tmp_path / "var", POSKO_ASSISTANT_KB_DIR=str(kb),
                            POSKO_VOICE_OUTPUT_DEVICE="")
    voice = VoiceComponent(synth=tiny_synth)
    agent = Agent(settings, components=[voice]).start()
    try:
        assert voice.ready.wait(60) and voice.pipeline is not None, voice.load_error
        old_version, old_generation = voice.pipeline.brain.kb.version, voice.pipeline.cache.generation
        assert voice.reload() is False  # nothing changed
        entry = kb / "skck" / "skck-biaya.yaml"
        entry.write_text(entry.read_text() + "\n# re-checked\n")  # any change makes a new version
        text = entry.read_text()
        assert voice.reload() is True
        assert voice.pipeline.brain.kb.version != old_version
        assert voice.pipeline.cache.generation != old_generation
        assert agent.heartbeat().parts["voice"]["kb_version"] == voice.pipeline.brain.kb.version[:12]
        entry.write_text("id: [broken")
        kept = voice.pipeline.brain.kb.version
        assert voice.reload() is False and voice.pipeline.brain.kb.version == kept
        entry.write_text(text)
    finally:
        agent.shutdown()



def test_a_component_that_fails_to_start_does_not_take_the_unit_down(mock_pins, broker, mqtt_client,
                                                                      topic_prefix, tmp_path) -> None:
    class Broken(FakePtt):
        def start(self, ctx) -> None:
            raise ValueError("[ptt] ptt_active = 'high' cannot work with ptt_pull = 'up'")

    watcher = mqtt_client()
    watcher.subscribe(f"{topic_prefix}/alert/#")
    agent = Agent(settings_for(broker, topic_prefix, tmp_path), components=[Broken()]).start()
    try:
        hb = agent.heartbeat()
        assert "ptt_active" in hb.parts["ptt"]["error"] and hb.parts["agent"]["status_led"] == "blinking"
        assert agent.link.wait_connected(5)
        agent.ctx.raise_alert("panic_button")  # the rest of the unit still works
        assert Alert.from_json(watcher.expect(timeout=5).payload).source == "panic_button"
    finally:
        agent.shutdown()
