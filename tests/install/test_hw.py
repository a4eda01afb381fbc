"""hw/README.md: every GPIO setting is in the pin table with its resistor or pull direction,
and the wiring diagrams fit a phone's screen."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from posko.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "hw" / "README.md").read_text()
TABLE = TEXT.split("<!-- pins:start -->")[1].split("<!-- pins:end -->")[0]
ROWS = re.findall(r"^\| ([^|]+) \| `(\w+)\.(\w+)` \| ([^|]+) \| ([^|]+) \|$", TABLE, re.M)


def test_every_gpio_setting_is_in_the_pin_table() -> None:
    settings = load_settings(None, environ={})
    pins = {f"{section}.{f.name}" for section in ("unit", "ptt")
            for f in dataclasses.fields(getattr(settings, section)) if f.name.endswith("_pin")}
    assert pins == {f"{s}.{k}" for _, s, k, _, _ in ROWS}
    assert "ptt.cos_pin" in pins  # the squelch input beside the PTT output


def test_every_button_and_led_says_its_resistor_and_pull_direction() -> None:
    for function, _section, _key, _pin, wiring in ROWS:
        if re.search(r"button|COS", function):
            assert re.search(r"pull-(up|down)", wiring), function
        assert re.search(r"\d+(\.\d+)?\s?[kM]?Ω", wiring), f"{function}: no resistor value in {wiring!r}"


def test_wiring_diagrams_fit_a_phone_screen() -> None:
    blocks = re.findall(r"```\n(.*?)```", TEXT, re.S)
    assert len(blocks) >= 5  # button, LED, buzzer, PTT out, COS in
    assert any("PC817" in b and "GPIO 26" in b for b in blocks)  # the COS input's diagram
    for block in blocks:
        for line in block.splitlines():
            assert len(line) <= 40, f"too wide for a phone ({len(line)}): {line!r}"
