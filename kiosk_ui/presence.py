"""Is a resident at the screen? The unit's updater asks before it restarts the kiosk.

The kiosk page says which screen it shows (`POST /api/presence`, on load, at a touch and
every few seconds while a screen other than Beranda is open); the views also note each page
they render. A screen other than Beranda counts as in use until the page's own idle reset
would have brought it home (`idle_reset_s` + `idle_warn_s`) plus a margin: a page that died
or lost its browser does not hold updates back for ever. Beranda, or nothing heard for that
long, is idle. Pure: the clock is passed in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# What each screen means for a maintainer reading why an update waits.
SCREENS = {
    "tanya": "a resident is asking a question (Tanya)",
    "lapor": "a report form is open (Lapor)",
    "cek": "a resident is checking a report (Cek)",
    "darurat": "the emergency screen is open (Darurat)",
}
IDLE = "home"
MARGIN_S = 15.0


class Presence:
    """The screen last reported and when; `state()` says whether it still counts."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._screen: str | None = None
        self._at = 0.0

    def seen(self, screen: str) -> bool:
        """The page shows `screen` now; False (and nothing noted) for a screen not known."""
        if screen != IDLE and screen not in SCREENS:
            return False
        with self._lock:
            self._screen = None if screen == IDLE else screen
            self._at = self._clock()
        return True

    def state(self) -> dict[str, Any]:
        """{"busy": bool, "screen": name or None, "reason": text or None}."""
        with self._lock:
            screen, at = self._screen, self._at
        if screen is None or self._clock() - at > self.ttl_s:
            return {"busy": False, "screen": None, "reason": None}
        return {"busy": True, "screen": screen, "reason": SCREENS[screen]}


def ttl_for(idle_reset_s: float, idle_warn_s: float) -> float:
    """How long a reported screen counts: until the page's idle reset, plus a margin."""
    return float(idle_reset_s) + float(idle_warn_s) + MARGIN_S
