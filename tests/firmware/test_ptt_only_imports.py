"""A PTT-only unit (the `unit` extra: no Flask, no assistant, no speech recognisers) runs its
agent, push-to-talk and spoken announcements without importing what it does not install."""

from __future__ import annotations

import subprocess
import sys

KIOSK_ONLY = ("assistant", "rapidfuzz", "sklearn", "flask", "vosk", "faster_whisper", "webrtcvad",
              "sqlalchemy", "piper")

PROBE = r"""
import sys
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
Device.pin_factory = MockFactory()
import firmware.agent, firmware.ptt_unit, firmware.ptt_announce, firmware.ptt_cli, firmware.cli
from posko.config import load_settings
settings = load_settings(environ={"POSKO_UNIT_ASSISTANT_ENABLED": "false", "POSKO_VOICE_TTS_VOICE": "none-here"})
agent = firmware.agent.Agent(settings)
names = [type(c).__name__ for c in agent._default_components()]
voice = firmware.ptt_announce.load_unit_voice(settings)  # Piper absent: espeak-ng or None
print(names, type(voice).__name__)
print(sorted(m for m in sys.modules if m.split(".")[0] in %r))
"""


def test_the_unit_side_imports_nothing_of_the_kiosk_or_the_hub() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE % (KIOSK_ONLY,)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    components, loaded = result.stdout.strip().splitlines()[-2:]
    assert "VoiceComponent" not in components and "Updater" in components
    assert loaded == "[]", f"a PTT-only unit would need: {loaded}"
