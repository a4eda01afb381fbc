"""Real PyAudio through ALSA's file plugin (in a child process whose HOME is the sandbox)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.audio, pytest.mark.timeout(120)]

PRELUDE = r"""
import json, sys
import numpy as np
from firmware.audio.devices import AudioSystem
from firmware.audio.streams import Microphone, Speaker
from firmware.errors import AudioDeviceError

class Only48k(AudioSystem):
    # Like a USB card that offers 48 kHz only (the file plugin itself takes any rate).
    def supports(self, device, rate_hz, *, output):
        return rate_hz == 48000 and super().supports(device, rate_hz, output=output)
"""


def tone(freq: float, rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 10000).astype("<i2").tobytes()


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(float) * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def test_capture_from_a_48k_only_device_is_resampled_to_16k(sound) -> None:
    sound.feed(tone(1000, 48000, 1.0))
    code = PRELUDE + r"""
mic = Microphone(Only48k(), "filein", 16000, frame_ms=30)
mic.open()
frames = [mic.read_frame() for _ in range(30)]
mic.close()
pcm = b"".join(frames)
print(json.dumps({"device_rate": mic.device_rate_hz, "sizes": sorted({len(f) for f in frames}),
                  "open_after_close": mic.is_open, "pcm": pcm.hex()}))
"""
    r = sound.run_python(code)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["device_rate"] == 48000 and out["sizes"] == [960] and out["open_after_close"] is False
    pcm = np.frombuffer(bytes.fromhex(out["pcm"]), dtype="<i2")
    assert len(pcm) == 30 * 480
    assert abs(dominant_hz(pcm[1000:], 16000) - 1000) < 10


def test_playback_at_the_voice_rate_or_resampled_for_the_device(sound) -> None:
    code = PRELUDE + r"""
pcm = (np.sin(2 * np.pi * 440 * np.arange(22050) / 22050) * 8000).astype("<i2").tobytes()
direct = Speaker(AudioSystem(), "fileout").play([pcm[:20000], pcm[20000:]], 22050)
first = open(sys.argv[1], "rb").read()
resampled = Speaker(Only48k(), "fileout").play([pcm], 22050)
print(json.dumps({"direct_s": direct, "resampled_s": resampled, "first_len": len(first)}))
"""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", code, str(sound.output)], env=sound.env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["first_len"] == 44100  # one second at the voice's own 22.05 kHz, untouched
    assert abs(out["direct_s"] - 1.0) < 0.01 and abs(out["resampled_s"] - 1.0) < 0.01
    played = np.frombuffer(sound.output.read_bytes(), dtype="<i2")
    assert abs(len(played) - 48000) < 100  # the second play went out at 48 kHz
    assert abs(dominant_hz(played, 48000) - 440) < 5


def test_devices_are_found_by_part_of_their_name(sound) -> None:
    code = PRELUDE + r"""
audio = AudioSystem()
print(audio.find("ILEI", output=False).name)
try:
    audio.find("usb-mic", output=False)
except AudioDeviceError as exc:
    print("ERR", exc)
"""
    r = sound.run_python(code)
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "filein"
    assert lines[1].startswith("ERR no capture device matching 'usb-mic'") and "'filein'" in lines[1]


def test_speaker_releases_the_card_while_radio_speech_plays(sound) -> None:
    code = PRELUDE + r"""
import threading
pcm = (np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 8000).astype("<i2").tobytes()
gate = threading.Event()
speaker = Speaker(AudioSystem(), "fileout")
def radio_starts():
    gate.set()  # push-to-talk begins playing received speech
    threading.Timer(0.3, gate.clear).start()
seconds = speaker.play([pcm], 16000, gate=gate, on_first_audio=radio_starts)
print(json.dumps({"opens": speaker.opens, "seconds": seconds}))
"""
    r = sound.run_python(code)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["opens"] == 2  # closed for the radio, reopened after
    assert abs(out["seconds"] - 1.0) < 0.01  # and nothing of the answer was lost


def test_sound_fingerprint_changes_when_the_alsa_setup_changes(sound) -> None:
    code = r"""
import os, time
from firmware.audio.devices import sound_fingerprint
a = sound_fingerprint(); b = sound_fingerprint()
rc = os.path.expanduser("~/.asoundrc")
time.sleep(0.01)
with open(rc, "a") as fh:
    fh.write("# a USB card was added\n")
c = sound_fingerprint()
print(a == b, a != c)
"""
    r = sound.run_python(code)
    assert r.stdout.split() == ["True", "True"], r.stderr[-2000:]


def test_tanya_button_silences_the_answer_within_100_ms(sound) -> None:
    """Real PyAudio (file plugin) + a real gpiozero Button on mock pins: pressing it while an
    answer is being spoken sentence by sentence stops playback at once (play() returns within
    100 ms, at most 100 ms of audio reaches the device after the press), and the stream is
    closed WITHOUT draining what the card still holds. The file plugin's null sink takes
    audio instantly, so a real card's buffer cannot be heard here: the drain is checked at
    the PortAudio call instead (Pa_CloseStream aborts, Pa_StopStream would play it out)."""
    code = PRELUDE + r"""
import os, threading, time
from gpiozero import Button, Device
from gpiozero.pins.mock import MockFactory
from firmware.audio.streams import PlaybackStopped
Device.pin_factory = MockFactory()
stop = threading.Event()
button = Button(5, pull_up=True, bounce_time=None)
button.when_pressed = lambda: stop.set()
sentence = (np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 8000).astype("<i2").tobytes()
def answer():  # an answer that would go on for a minute, made sentence by sentence
    for _ in range(60):
        time.sleep(0.05)
        yield sentence
out = os.path.join(os.environ["HOME"], "out.raw")
marks = {}
def press():
    time.sleep(0.2)
    marks["bytes"] = os.path.getsize(out)
    marks["t"] = time.monotonic()
    Device.pin_factory.pin(5).drive_low()
class Recording(AudioSystem):
    closes = []
    def close_stream(self, stream, discard=False):
        Recording.closes.append(discard)
        super().close_stream(stream, discard)
speaker = Speaker(Recording(), "fileout")
stopped = False
try:
    speaker.play(answer(), 16000, stop=stop,
                 on_first_audio=lambda: threading.Thread(target=press).start())
except PlaybackStopped:
    stopped = True
done = time.monotonic()
print(json.dumps({"stopped": stopped, "after_s": done - marks["t"], "closes": Recording.closes,
                  "samples_after": (os.path.getsize(out) - marks["bytes"]) // 2}))
"""
    r = sound.run_python(code)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["stopped"]
    assert out["after_s"] <= 0.1
    assert out["samples_after"] <= 1600  # 100 ms at 16 kHz
    assert out["closes"] == [True]  # what the card still held was dropped, not played out
