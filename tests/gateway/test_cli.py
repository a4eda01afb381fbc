"""`posko arbiter`, `posko ptt` and `posko up`'s arbiter entry, as a person runs them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.devstack import dev_services
from posko.config import load_settings

pytestmark = [pytest.mark.timeout(60)]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "posko", *args], capture_output=True, text=True,
                          timeout=40, env={**os.environ, **(env or {})})


def test_dev_stack_runs_the_arbiter_against_the_dev_broker(tmp_path) -> None:
    settings = load_settings(environ={"POSKO_BROKER_PORT": "18999", "POSKO_POSKO_STATE_DIR": str(tmp_path)})
    (spec,) = dev_services(settings)
    assert spec.name == "arbiter" and spec.argv[-1] == "arbiter"
    assert spec.env["POSKO_MQTT_PORT"] == "18999"
    assert spec.env["POSKO_POSKO_STATE_DIR"] == str(tmp_path)


def test_ptt_refuses_a_wav_it_cannot_send(tmp_path) -> None:
    wav = tmp_path / "cd.wav"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(wav), "synth", "0.2", "sine", "440"],
                   check=True)
    result = run("ptt", "--send", str(wav), "--no-speaker", env={"POSKO_POSKO_STATE_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "need 16000 Hz, 16-bit, mono" in result.stderr and "44100" in result.stderr
    missing = run("ptt", "--send", str(tmp_path / "nope.wav"))
    assert missing.returncode != 0 and "nope.wav" in (missing.stderr + missing.stdout)
    bad_group = run("ptt", "--group", "batang/kota", "--no-speaker", "--listen", "0.1",
                    env={"POSKO_POSKO_STATE_DIR": str(tmp_path)})
    assert bad_group.returncode == 2 and "--group" in bad_group.stderr and "Traceback" not in bad_group.stderr


@pytest.mark.broker
def test_arbiter_command_starts_and_stops(broker, tmp_path) -> None:
    result = run("arbiter", "--exit-after", "1.5",
                 env={"POSKO_MQTT_PORT": str(broker.port), "POSKO_POSKO_STATE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "recordings in" in result.stdout and "arbiter stopped" in result.stdout
    assert (tmp_path / "recordings").is_dir()


def test_pure_modules_and_the_arbiter_load_no_audio_or_hardware_library() -> None:
    code = ("import sys, gateway.packet, gateway.floor, gateway.jitter, gateway.messages, gateway.tones, "
            "gateway.ogg, gateway.arbiter, gateway.recorder, gateway.client, hub.talkgroups, "
            "firmware.ptt_audio, firmware.ptt_terminal, firmware.ptt_unit; "
            "print(sorted(m for m in ('pyaudio', 'gpiozero', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.broker
def test_ptt_says_which_named_sound_device_it_cannot_find(broker, tmp_path) -> None:
    result = run("ptt", "--listen", "0.5", "--output-device", "no-such-card", "--input-device", "no-such-mic",
                 env={"POSKO_MQTT_PORT": str(broker.port), "POSKO_POSKO_STATE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr  # it still listens (and can --record)
    assert "no playback device matching 'no-such-card'" in result.stderr
    assert "no capture device matching 'no-such-mic'" in result.stderr
    assert "Traceback" not in result.stderr


def test_ptt_scan_option_is_checked(tmp_path) -> None:
    result = run("ptt", "--scan", "a,b,c,d,e", "--listen", "0.1", "--no-speaker",
                 env={"POSKO_POSKO_STATE_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "--scan" in result.stderr and "at most 4 talk groups, found 5" in result.stderr
    result = run("ptt", "--scan", "a,a", "--listen", "0.1", "--no-speaker",
                 env={"POSKO_POSKO_STATE_DIR": str(tmp_path)})
    assert result.returncode == 2 and "listed twice" in result.stderr


@pytest.mark.broker
def test_ptt_scan_records_a_scanned_groups_spurt(broker, net, tmp_path) -> None:
    """`posko ptt --group lo --scan hi --record DIR` keeps what it heard in hi."""
    import time

    from tests.gateway.conftest import ListSource, tone_frames

    net.arbiter()
    heard = tmp_path / "heard"
    env = {**os.environ, "POSKO_MQTT_PORT": str(broker.port), "POSKO_MQTT_TOPIC_ROOT": net.mqtt.topic_root,
           "POSKO_POSKO_STATE_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "posko", "ptt", "--unit", "scanner", "--group", "lo",
                             "--scan", "hi", "--record", str(heard), "--listen", "8", "--no-speaker"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        talker = net.unit("hi-talker", lambda: ListSource(tone_frames(1.0, 2200)), group="hi")
        time.sleep(2.5)  # the process subscribes
        talker.client.press()
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and not list(heard.glob("*.wav")):
            time.sleep(0.1)
        files = list(heard.glob("*.wav"))
        assert files and "hi-talker" in files[0].name
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
