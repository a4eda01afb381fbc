"""hw/README.md's pin map says what the settings' defaults are (docs that stay true)."""

import re
from pathlib import Path

from posko.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_pin_table_matches_settings_defaults() -> None:
    text = (ROOT / "hw" / "README.md").read_text()
    table = text.split("<!-- pins:start -->")[1].split("<!-- pins:end -->")[0]
    settings = load_settings(None, environ={})
    rows = re.findall(r"\| `(\w+)\.(\w+)` \| ([^|]+) \|", table)
    assert len(rows) >= 9
    used = []
    for section, key, pin in rows:
        value = getattr(getattr(settings, section), key)
        expected = "none (-1)" if value == -1 else str(value)
        assert pin.strip() == expected, f"{section}.{key}: table says {pin.strip()}, setting is {value}"
        if value >= 0:
            used.append(value)
    assert len(used) == len(set(used)), f"two functions share a pin: {sorted(used)}"
