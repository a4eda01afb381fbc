"""The simulated unit of `posko up` uses the laptop's sound devices, or says there are none."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.audio

CODE = r"""
import json
from posko.config import load_settings
from firmware.devstack import dev_services
specs = dev_services(load_settings())
print(json.dumps([{"name": s.name, "argv": list(s.argv), "env": s.env} for s in specs]))
"""


def run(sound, **env):
    r = sound.run_python(CODE, **env)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    return lines[:-1], json.loads(lines[-1])


def test_unit_runs_with_mock_pins_and_the_sound_devices_found(sound) -> None:
    notes, specs = run(sound, POSKO_VOICE_INPUT_DEVICE="filein", POSKO_VOICE_OUTPUT_DEVICE="fileout")
    (spec,) = specs
    assert spec["argv"][-1] == "unit" and spec["env"]["POSKO_UNIT_PIN_FACTORY"] == "mock"
    assert spec["env"]["POSKO_VOICE_INPUT_DEVICE"] == "filein"
    assert spec["env"]["POSKO_VOICE_OUTPUT_DEVICE"] == "fileout"
    assert notes == []


def test_missing_devices_are_left_out_and_said(sound) -> None:
    notes, specs = run(sound, POSKO_VOICE_INPUT_DEVICE="usb-headset", POSKO_VOICE_OUTPUT_DEVICE="fileout")
    assert specs[0]["env"]["POSKO_VOICE_INPUT_DEVICE"] == ""
    assert notes == ["unit     no microphone: typed questions only, answers are spoken"]
    notes, specs = run(sound, POSKO_VOICE_INPUT_DEVICE="usb", POSKO_VOICE_OUTPUT_DEVICE="usb")
    assert notes == ["unit     no sound devices: the kiosk answers typed questions on screen only"]
