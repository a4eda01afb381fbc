"""The simulated kiosk unit of `posko up`: `posko unit` with mock pins and the laptop's sound.

A laptop has no GPIO, so the panel uses gpiozero's mock pins (the kiosk screen's
microphone button sends the same `listen` command as the Tanya button). Sound devices are
whatever the laptop has; with none, the unit says so and typed questions still work.
"""

from __future__ import annotations

import click

from firmware.audio.devices import AudioSystem
from posko.broker import dev_client_env
from posko.config import Settings
from posko.procs import ProcessSpec, python_module_argv


def _sound_devices(settings: Settings) -> tuple[str, str, str]:
    """(input, output, note): configured names when they exist here, else ''."""
    try:
        audio = AudioSystem()
        found = []
        for name, output in ((settings.voice.input_device, False), (settings.voice.output_device, True)):
            try:
                found.append(audio.find(name, output=output).name if name else "")
            except OSError:
                found.append("")
        audio.close()
    except Exception as exc:  # PortAudio missing altogether
        return "", "", f"no sound system ({exc})"
    note = ""
    if not found[0] and not found[1]:
        note = "no sound devices: the kiosk answers typed questions on screen only"
    elif not found[0]:
        note = "no microphone: typed questions only, answers are spoken"
    elif not found[1]:
        note = "no speaker: answers are shown, not spoken"
    return found[0], found[1], note


def dev_services(settings: Settings) -> list[ProcessSpec]:
    mic, speaker, note = _sound_devices(settings)
    env = {
        "POSKO_UNIT_PIN_FACTORY": "mock",
        **dev_client_env(settings, "unit"),  # user = the unit id
        "POSKO_POSKO_STATE_DIR": str(settings.state_dir),
        "POSKO_VOICE_INPUT_DEVICE": settings.voice.input_device if mic else "",
        "POSKO_VOICE_OUTPUT_DEVICE": settings.voice.output_device if speaker else "",
    }
    if note:
        click.echo(f"unit     {note}")
    return [ProcessSpec(name="unit", argv=python_module_argv("unit"), env=env)]
