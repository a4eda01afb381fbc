"""Debian's Chromium driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import os
import shutil

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]

KIOSK_SIZES = {"7inch": (800, 480), "hd": (1280, 720)}


def chromium_path() -> str | None:
    """Debian's Chromium, or None when it is not installed."""
    for cand in (os.environ.get("POSKO_TEST_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if cand and os.path.exists(cand):
            return cand
    return None
