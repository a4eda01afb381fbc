"""Where a unit keeps the knowledge-base bundles it fetched from the hub, and which one is in use.

Layout under the state directory (written by `firmware.kb_update`, read by every part that
loads the assistant brain: the voice component, the kiosk screen, `posko ask`):

    kb/<version>/        one unpacked, validated bundle per folder (the current and the last good)
    kb/current           a one-line file naming the folder in use, replaced atomically

`[assistant] kb_dir`, when set, wins over both; with neither the shipped KB is used.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from posko.config import Settings

POINTER = "current"
# Written into each unpacked bundle: the hub's bundle version, shown in the heartbeat.
MARKER = ".bundle-version"
VERSION_PATTERN = re.compile(r"^[0-9a-f]{12}\Z")


def kb_store(settings: Settings) -> Path:
    """The folder holding the unit's installed bundles."""
    return settings.state_dir / "kb"


def installed_version(settings: Settings) -> str | None:
    """The version named by the pointer, if that folder exists; None before the first install."""
    try:
        version = (kb_store(settings) / POINTER).read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if not VERSION_PATTERN.match(version) or not (kb_store(settings) / version).is_dir():
        return None
    return version


def active_kb_dir(settings: Settings) -> Path | None:
    """The KB folder the brain should load: `[assistant] kb_dir`, else the installed bundle,
    else None (the shipped KB)."""
    if settings.assistant.kb_dir:
        return settings.resolve(settings.assistant.kb_dir)
    version = installed_version(settings)
    return kb_store(settings) / version if version else None


def bundle_version(kb_root: str | Path) -> str | None:
    """The hub's bundle version of an unpacked bundle folder (None for any other KB folder)."""
    try:
        version = (Path(kb_root) / MARKER).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return version if VERSION_PATTERN.match(version) else None


def write_pointer(settings: Settings, version: str) -> None:
    """Point `kb/current` at `version` atomically (write a temporary file, fsync, rename)."""
    if not VERSION_PATTERN.match(version):
        raise ValueError(f"not a bundle version: {version!r}")
    store = kb_store(settings)
    tmp = store / f".{POINTER}.tmp"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, store / POINTER)
    fd = os.open(store, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a power cut
    finally:
        os.close(fd)
