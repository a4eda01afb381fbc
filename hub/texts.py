"""Words people read, loaded once from `hub/data/texts.yaml` (not scattered through Python)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEXTS_FILE = Path(__file__).resolve().parent / "data" / "texts.yaml"


@cache
def texts() -> dict[str, Any]:
    with open(TEXTS_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def label(group: str, key: str, lang: str = "id") -> str:
    """The label of `key` in `group` (e.g. label("states", "baru") -> "Baru"); key if unknown."""
    entry = texts().get(group, {}).get(key)
    if isinstance(entry, dict):
        return entry.get(lang) or entry.get("id") or key
    return key


def message(key: str) -> dict[str, str]:
    """An API message for a kiosk in both languages: {"id": ..., "en": ...}."""
    return dict(texts()["api"][key])
