"""`posko unit` in a child process: real PyAudio over ALSA's file plugin, real Vosk (Korean
model), real Piper (tiny voice), the real brain, and a real Mosquitto.

The Korean model cannot understand Indonesian, so the spoken question here is Korean: the
transcript reaches the brain, which answers with its fallback, and that answer is spoken.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from posko.messages import AssistantCommand
from tests.firmware.agentproc import UnitProcess, collect_events, unit_env, wait_heartbeat
from tests.firmware.conftest import silence
from tests.support.mqtt import Client
from tests.support.sound import ASOUNDRC, SoundSandbox

pytestmark = [pytest.mark.broker, pytest.mark.audio, pytest.mark.slow, pytest.mark.timeout(240)]

UNIT = "kiosk-voice-1"
HANGUL = range(0xAC00, 0xD7A4)


@pytest.fixture(scope="module")
def running(tmp_path_factory, broker, ko_model_dir, tiny_voice):
    folder = tmp_path_factory.mktemp("unit")
    sound = SoundSandbox(folder / "home")
    root = f"test/{uuid.uuid4().hex[:10]}/posko/v1"
    env = unit_env(sound, broker, root, UNIT, folder / "var", asr_model=str(ko_model_dir),
                   tts_voice=str(tiny_voice), input_device="filein", output_device="fileout",
                   device_check_s="0.3")
    client = Client(broker.port)
    assert client.wait_connected()
    client.subscribe(f"{root}/unit/{UNIT}/#")
    client.subscribe(f"{root}/alert/#")
    # One report waiting in the kiosk's outbox: the heartbeat must count it, as the kiosk
    # app's local API reports it (the agent never opens the kiosk's database).
    from kiosk_ui.app import create_app
    from kiosk_ui.outbox import Outbox, outbox_dir
    from posko.config import load_settings
    from tests.kiosk_ui.conftest import ServedApp

    Outbox.open(outbox_dir(load_settings(environ=env))).submit(
        {"category": "lainnya", "description": "uji heartbeat", "occurred_at": "2026-11-27T20:00:00+07:00",
         "location": "Posko Alun-alun"})
    kiosk = ServedApp(create_app({"SETTINGS": load_settings(environ=env), "START_BRAIN": False}))
    env["POSKO_KIOSK_PORT"] = str(kiosk.server.server_port)
    proc = UnitProcess(env, folder / "unit.log")
    try:
        wait_heartbeat(client, proc, lambda hb: hb.parts.get("voice", {}).get("ready") is True
                       and hb.parts["voice"].get("microphone") == "ok")
        yield type("Running", (), {"sound": sound, "root": root, "client": client, "proc": proc})
    finally:
        code = proc.stop()
        client.close()
        kiosk.stop()
        assert code == 0, proc.log()[-2000:]


def command(running, **kw) -> str:
    session = kw.setdefault("session", uuid.uuid4().hex[:8])
    running.client.publish(f"{running.root}/unit/{UNIT}/assistant/command",
                           AssistantCommand(**kw).to_json(), qos=1)
    return session


def test_heartbeat_reports_models_devices_and_fallback(running) -> None:
    hb = wait_heartbeat(running.client, running.proc, lambda hb: "asr" in hb.models)
    assert hb.unit == UNIT and hb.version and hb.uptime_s > 0 and hb.disk_free_mb > 0
    assert hb.models["asr"]["load_s"] > 0 and hb.models["asr"]["mode"].startswith("open")
    assert hb.models["tts"]["engine"] == "piper" and hb.models["tts"]["name"] == "tiny-test-tone"
    voice = hb.parts["voice"]
    assert voice["speaker"] == "ok" and voice["tts_fallback"] is False
    assert hb.talk_group and hb.interval_s == 1.0
    assert hb.outbox_pending == 1 and hb.parts["outbox"]["pending"] == 1 and hb.outbox_oldest_s >= 0
    # In the background, every KB answer is spoken into the cache (warm_on_start).
    from assistant import load_brain

    unique = {(lang, " ".join(speech.split())) for _e, lang, speech in load_brain().spoken_answers() if speech.strip()}
    done = wait_heartbeat(running.client, running.proc,
                          lambda hb: hb.parts["voice"]["cache"]["warm"] == "done", timeout=120)
    assert done.parts["voice"]["cache"]["entries"] == len(unique)


def test_spoken_question_full_loop_over_the_broker(running, korean_phrase_raw, tiny_synth) -> None:
    sound = running.sound
    sound.output.write_bytes(b"")
    sound.feed(silence(0.4) + korean_phrase_raw + silence(1.5))
    session = command(running, command="listen")
    events = collect_events(running.client, session, unit_proc=running.proc)
    types = [e.type for e in events]
    wanted = ["listening", "transcript", "answer", "speaking", "done"]
    assert [t for t in types if t in wanted] == wanted, types
    assert "partial" in types and types.index("partial") < types.index("transcript")
    transcript_event = next(e for e in events if e.type == "transcript")
    transcript = transcript_event.text
    assert any(ord(c) in HANGUL for c in transcript)
    words = transcript_event.reply["words"]
    assert " ".join(w["word"] for w in words) == transcript and all(0 <= w["conf"] <= 1 for w in words)
    assert 0 < transcript_event.reply["confidence"] <= 1
    answer = next(e for e in events if e.type == "answer")
    assert answer.reply["action"] == "fallback" and answer.reply["speech"]
    # The speaker file holds the answer the tiny voice made (after the chime).
    expected = b"".join(tiny_synth.synthesize(answer.reply["speech"]))
    played = sound.output.read_bytes()
    assert expected in played, (len(played), len(expected))
    tail = np.frombuffer(played[-len(expected):], dtype="<i2").astype(float)
    assert abs(np.argmax(np.abs(np.fft.rfft(tail))) * 16000 / len(tail) - 220) < 3


def test_say_command_speaks_and_second_time_uses_the_cache(running, tiny_synth) -> None:
    text = "Biaya SKCK Rp30.000."
    expected = b"".join(tiny_synth.synthesize(text))
    for _ in range(2):  # the file plugin rewrites out.raw at each playback
        running.sound.output.write_bytes(b"")
        session = command(running, command="say", text=text)
        assert [e.type for e in collect_events(running.client, session)][-2:] == ["speaking", "done"]
        assert expected in running.sound.output.read_bytes()
    hb = wait_heartbeat(running.client, running.proc,
                        lambda hb: hb.parts["voice"].get("cache", {}).get("hits", 0) >= 1)
    assert hb.parts["voice"]["cache"]["entries"] >= 1


def test_bad_command_is_dropped_and_the_unit_keeps_working(running) -> None:
    running.client.publish(f"{running.root}/unit/{UNIT}/assistant/command", b'{"command": "dance"}')
    running.client.publish(f"{running.root}/unit/{UNIT}/assistant/command", b"not json")
    session = command(running, command="say", text="Halo.")
    assert collect_events(running.client, session)[-1].type == "done"
    assert "bad assistant command dropped" in running.proc.log()


def test_sound_card_gone_and_back_recovers_by_itself(running, korean_phrase_raw) -> None:
    sound = running.sound
    rc = sound.home / ".asoundrc"
    original = rc.read_text()
    try:
        # The USB card is unplugged: its capture device disappears from ALSA.
        rc.write_text("\n".join(line for line in original.splitlines() if not line.startswith("pcm.filein"))
                      .replace('capture.pcm "filein"', 'capture.pcm "null"') + "\n")
        hb = wait_heartbeat(running.client, running.proc,
                            lambda hb: hb.parts["voice"]["microphone"] == "missing")
        assert hb.parts["agent"]["status_led"] == "blinking"
        assert "microphone" in hb.parts["agent"]["problems"] and hb.parts["voice"]["typed_only"]
        session = command(running, command="listen")
        events = collect_events(running.client, session)
        error = next(e for e in events if e.type == "error")
        assert error.reply["code"] == "mic-unavailable"
        assert error.text == "Mikrofon sedang tidak tersedia. Silakan ketik pertanyaan Bapak/Ibu."
        # Spoken answers to typed questions still work without the microphone.
        assert collect_events(running.client, command(running, command="say", text="Halo."))[-1].type == "done"
    finally:
        rc.write_text(original)
    hb = wait_heartbeat(running.client, running.proc, lambda hb: hb.parts["voice"]["microphone"] == "ok")
    assert hb.parts["agent"]["status_led"] == "steady"
    sound.feed(silence(0.3) + korean_phrase_raw + silence(1.5))
    events = collect_events(running.client, command(running, command="listen"))
    assert "transcript" in [e.type for e in events]
    log = running.proc.log()
    assert "is GONE" in log and "is back" in log and running.proc.alive()
    assert ASOUNDRC  # the sandbox's own template is what was restored
