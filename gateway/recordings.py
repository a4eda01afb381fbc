"""The recordings index: list, serve and expire the spurts the recorder saved.

Reads only the `.json` sidecars beside each `.opus` file, so the hub lists, plays and
expires recordings without loading the Opus codec (the recorder, which encodes, lives in
`gateway.recorder` and runs in the arbiter's process).

Layout: <dir>/<group>/<YYYY-MM-DD>/<HHMMSS>_<unit>_<spurt hex>.opus (UTC).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.errors import RecordingError


@dataclass(frozen=True)
class Recording:
    """One saved spurt, as its sidecar describes it."""

    group: str
    unit: str
    spurt: int
    start: float  # Unix seconds of the first frame's arrival
    duration_s: float
    frames: int
    lost: int
    file: str  # path of the .opus file relative to the recordings folder

    @property
    def start_iso(self) -> str:
        return datetime.fromtimestamp(self.start, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")



def list_recordings(folder: Path, group: str | None = None, since: float | None = None,
                    until: float | None = None) -> list[Recording]:
    """Saved recordings, newest first, optionally of one group and within [since, until)."""
    folder = Path(folder)
    base = folder / group if group else folder
    out = []
    if not base.is_dir():
        return out
    for side in base.rglob("*.json"):
        try:
            rec = Recording(**json.loads(side.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # a damaged sidecar hides one entry, never the whole list
        if since is not None and rec.start < since:
            continue
        if until is not None and rec.start >= until:
            continue
        if not (folder / rec.file).is_file():
            continue
        out.append(rec)
    out.sort(key=lambda r: r.start, reverse=True)
    return out


def apply_retention(folder: Path, days: int, now: float | None = None) -> int:
    """Delete recordings that started more than `days` ago; returns how many. 0 keeps all."""
    if days <= 0:
        return 0
    now = time.time() if now is None else now
    cutoff = now - days * 86400
    removed = 0
    for rec in list_recordings(folder):
        if rec.start < cutoff:
            audio = Path(folder) / rec.file
            for path in (audio, audio.with_suffix(".json")):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
            removed += 1
    # Drop day folders that are now empty.
    for day in sorted(Path(folder).glob("*/*"), reverse=True):
        if day.is_dir() and not any(day.iterdir()):
            shutil.rmtree(day, ignore_errors=True)
    return removed


def resolve_folder(state_dir: Path, recordings_dir: str) -> Path:
    """The recordings folder: absolute as configured, else under the state directory."""
    path = Path(recordings_dir).expanduser()
    return path if path.is_absolute() else Path(state_dir) / path


def safe_recording_path(folder: Path, rel: str) -> Path:
    """`folder/rel` for serving a file; RecordingError when rel escapes the folder."""
    root = Path(folder).resolve()
    path = (root / rel).resolve()
    if root not in path.parents or path.suffix != ".opus" or not path.is_file():
        raise RecordingError(f"recording {rel!r} not found")
    return path
