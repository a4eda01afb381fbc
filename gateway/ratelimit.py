"""Say a repeated complaint once a minute, not once per frame."""

from __future__ import annotations

import time


def due(last: dict[str, float], key: str, every_s: float = 60.0) -> bool:
    """True when `key` was not reported in the last `every_s`; records it. Caps the dict."""
    now = time.monotonic()
    if now - last.get(key, float("-inf")) < every_s:
        return False
    if len(last) > 1000:
        last.clear()
    last[key] = now
    return True
