"""Push-to-talk's microphone and speaker on the unit's audio layer (real PyAudio, ALSA files).

Each test runs in a child process whose HOME holds an `.asoundrc` (tests/support/sound.py)
with, besides the default device, a named pair `radio-in`/`radio-out` on files of their
own, so a test can tell the named device from the default one by where the audio went.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.audio, pytest.mark.timeout(120)]

NAMED = """\
pcm.radio-out {{ type file  slave.pcm "null"  file "{out}"  format "raw" }}
pcm.radio-in  {{ type file  slave.pcm "null"  file "/dev/null"  infile "{inp}"  format "raw" }}
"""

PRELUDE = r"""
import json, sys
import numpy as np
from firmware.audio.devices import AudioSystem
from firmware.ptt_audio import MicSource, SpeakerSink

class Only48k(AudioSystem):
    # Like a USB card that offers 48 kHz only (the file plugin itself takes any rate).
    def supports(self, device, rate_hz, *, output):
        return rate_hz == 48000 and super().supports(device, rate_hz, output=output)

def emit(**fields):
    print(json.dumps(fields))
"""


def tone(freq: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 10000).astype("<i2")


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(float) * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.fixture
def radio(sound):
    """The sandbox plus the named device pair: (sandbox, radio-in file, radio-out file)."""
    radio_in, radio_out = sound.home / "radio-in.raw", sound.home / "radio-out.raw"
    radio_in.write_bytes(b"")
    with open(sound.home / ".asoundrc", "a", encoding="utf-8") as rc:
        rc.write(NAMED.format(out=radio_out, inp=radio_in))
    return sound, radio_in, radio_out


def last_json(result) -> dict:
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ptt_speaker_plays_on_the_named_device_not_the_default(radio) -> None:
    sound, _radio_in, radio_out = radio
    code = PRELUDE + r"""
pcm = (np.sin(2 * np.pi * 700 * np.arange(16000) / 16000) * 8000).astype("<i2").tobytes()
sink = SpeakerSink(320, "radio-out")
for i in range(0, len(pcm), 640):
    sink.write(pcm[i:i + 640])
name = sink.device_name
sink.close()
emit(device=name)
"""
    out = last_json(sound.run_python(code))
    assert out["device"] == "radio-out"
    played = np.frombuffer(radio_out.read_bytes(), "<i2")
    assert abs(len(played) - 16000) < 10  # one second at 16 kHz, frame by frame
    assert abs(dominant_hz(played, 16000) - 700) < 5
    assert len(sound.played()) == 0  # nothing went to the default device


def test_ptt_microphone_reads_the_named_device_not_the_default(radio) -> None:
    sound, radio_in, _radio_out = radio
    radio_in.write_bytes(tone(600, 16000, 0.5).tobytes())
    sound.feed(tone(2000, 16000, 0.5))  # the default microphone hears something else
    code = PRELUDE + r"""
mic = MicSource(320, "radio-in")
frames = [mic.read() for _ in range(20)]
name = mic.device_name
mic.close()
emit(device=name, sizes=sorted({len(f) for f in frames}), pcm=b"".join(frames).hex())
"""
    out = last_json(sound.run_python(code))
    assert out["device"] == "radio-in" and out["sizes"] == [640]  # 20 ms of 16 kHz int16
    pcm = np.frombuffer(bytes.fromhex(out["pcm"]), "<i2")
    assert abs(dominant_hz(pcm, 16000) - 600) < 10


def test_a_48k_only_card_is_resampled_both_ways(radio) -> None:
    sound, radio_in, radio_out = radio
    radio_in.write_bytes(tone(1000, 48000, 1.0).tobytes())
    code = PRELUDE + r"""
mic = MicSource(320, "radio-in", system=Only48k())
frames = [mic.read() for _ in range(40)]
mic.close()
sink = SpeakerSink(320, "radio-out", system=Only48k())
pcm = (np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 8000).astype("<i2").tobytes()
for i in range(0, len(pcm), 640):
    sink.write(pcm[i:i + 640])
sink.close()
emit(mic_rate=mic.device_rate_hz, speaker_rate=sink.device_rate_hz, sizes=sorted({len(f) for f in frames}),
     pcm=b"".join(frames).hex())
"""
    out = last_json(sound.run_python(code))
    assert out["mic_rate"] == out["speaker_rate"] == 48000 and out["sizes"] == [640]
    heard = np.frombuffer(bytes.fromhex(out["pcm"]), "<i2")
    assert abs(dominant_hz(heard[1000:], 16000) - 1000) < 10
    played = np.frombuffer(radio_out.read_bytes(), "<i2")
    assert abs(len(played) - 48000) < 100  # one second went out at the card's 48 kHz
    assert abs(dominant_hz(played, 48000) - 440) < 5


def test_a_wrong_name_is_an_audio_device_error_naming_it(radio) -> None:
    sound, _radio_in, _radio_out = radio
    code = PRELUDE + r"""
import firmware.errors
out = {}
for kind, open_it in (("mic", lambda: MicSource(320, "usb-headset")),
                      ("speaker", lambda: SpeakerSink(320, "usb-headset"))):
    try:
        open_it()
        out[kind] = "opened"
    except firmware.errors.AudioDeviceError as exc:
        out[kind] = str(exc)
        out[kind + "_is_os_error"] = isinstance(exc, OSError)
emit(**out)
"""
    out = last_json(sound.run_python(code))
    assert out["mic"].startswith("no capture device matching 'usb-headset'")
    assert "'radio-in'" in out["mic"]  # the devices that do exist are listed
    assert out["speaker"].startswith("no playback device matching 'usb-headset'")
    assert "'radio-out'" in out["speaker"]
    assert out["mic_is_os_error"] and out["speaker_is_os_error"]  # the gateway catches OSError


def test_voice_and_ptt_share_one_portaudio_and_a_replugged_card_is_found(radio) -> None:
    """A card that appears later is found: a refresh while the PTT speaker plays waits for
    it to close; a name not found makes the PTT microphone ask PortAudio to scan again."""
    sound, radio_in, _radio_out = radio
    late_in = sound.home / "late.raw"
    late_in.write_bytes(tone(900, 16000, 0.5).tobytes())
    card = 'pcm.{} {{ type file  slave.pcm "null"  file "/dev/null"  infile "{}"  format "raw" }}\n'
    late, later = card.format("late-card", late_in), card.format("later-card", radio_in)
    code = PRELUDE + r"""
import os
voice, ptt = AudioSystem(), AudioSystem()
shared = voice.pa is ptt.pa
sink = SpeakerSink(320, "radio-out", system=ptt)
sink.write(bytes(640))
with open(os.path.expanduser("~/.asoundrc"), "a") as rc:
    rc.write(sys.argv[1])  # the USB card is plugged in
before = voice.pa
refreshed_while_open = voice.refresh()
kept = voice.pa is before
sink.close()  # the deferred re-scan happens now
mic = MicSource(320, "late-card", system=ptt)
frame = mic.read()
name = mic.device_name
mic.close()
scanned = voice.pa
with open(os.path.expanduser("~/.asoundrc"), "a") as rc:
    rc.write(sys.argv[2])  # another card, while PortAudio is up and no stream is open
later = MicSource(320, "later-card", system=ptt)
later.close()
emit(shared=shared, refreshed_while_open=refreshed_while_open, kept=kept, device=name,
     new_pa=scanned is not before, level=int(np.abs(np.frombuffer(frame, "<i2")).max()),
     later=later.device_name, rescanned=voice.pa is not scanned)
"""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code, late, later], env=sound.env(),
                            capture_output=True, text=True, timeout=60)
    out = last_json(result)
    assert out["shared"] is True
    assert out["refreshed_while_open"] is False and out["kept"] is True
    assert out["device"] == "late-card" and out["new_pa"] is True
    assert out["level"] > 3000
    assert out["later"] == "later-card" and out["rescanned"] is True


def test_the_unit_uses_the_voice_device_settings_for_ptt(radio) -> None:
    """[voice] input_device / output_device name the cards PTT uses on a unit."""
    sound, radio_in, radio_out = radio
    radio_in.write_bytes(tone(500, 16000, 0.5).tobytes())
    code = r"""
import json
import numpy as np
from firmware.ptt_unit import LazySpeaker, PttComponent
from posko.config import load_settings

settings = load_settings()
comp = PttComponent(settings)
mic = comp._open_mic()
frame = mic.read()
mic.close()
speaker = LazySpeaker(320, settings.voice.output_device)
speaker.write((np.ones(320) * 5000).astype("<i2").tobytes())
speaker.close()
empty = PttComponent(load_settings(environ={"POSKO_VOICE_INPUT_DEVICE": ""}))
try:
    empty._open_mic()
    no_mic = "opened"
except OSError as exc:
    no_mic = str(exc)
print(json.dumps({"mic": mic.device_name, "failed": speaker.failed, "no_mic": no_mic,
                  "level": int(np.abs(np.frombuffer(frame, "<i2")).max())}))
"""
    result = sound.run_python(code, POSKO_VOICE_INPUT_DEVICE="radio-in",
                              POSKO_VOICE_OUTPUT_DEVICE="radio-out",
                              POSKO_POSKO_STATE_DIR=str(sound.home / "var"))
    out = last_json(result)
    assert out["mic"] == "radio-in" and out["level"] > 3000 and out["failed"] == ""
    assert "input_device" in out["no_mic"]
    assert len(np.frombuffer(radio_out.read_bytes(), "<i2")) == 320
