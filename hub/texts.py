"""Words people read, loaded once from `hub/data/texts.yaml` (not scattered through Python)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEXTS_FILE = Path(__file__).resolve().parent / "data" / "texts.yaml"
# The command center's own words; its groups are merged into texts.yaml's (a key of both
# files in one group is an error, so neither silently hides the other).
DASHBOARD_FILE = TEXTS_FILE.with_name("dashboard.yaml")


@cache
def texts() -> dict[str, Any]:
    with open(TEXTS_FILE, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    with open(DASHBOARD_FILE, encoding="utf-8") as fh:
        extra = yaml.safe_load(fh)
    for group, entries in extra.items():
        if group in data and isinstance(data[group], dict) and isinstance(entries, dict):
            clash = set(data[group]) & set(entries)
            if clash:
                raise ValueError(f"{DASHBOARD_FILE.name}: {group} repeats {sorted(clash)}")
            data[group] = {**data[group], **entries}
        elif group in data:
            raise ValueError(f"{DASHBOARD_FILE.name}: group {group} is also in {TEXTS_FILE.name}")
        else:
            data[group] = entries
    return data


def label(group: str, key: str, lang: str = "id") -> str:
    """The label of `key` in `group` (e.g. label("states", "baru") -> "Baru"); key if unknown."""
    entry = texts().get(group, {}).get(key)
    if isinstance(entry, dict):
        return entry.get(lang) or entry.get("id") or key
    return key


def message(key: str) -> dict[str, str]:
    """An API message for a kiosk in both languages: {"id": ..., "en": ...}."""
    return dict(texts()["api"][key])
