"""Small facts about this process and machine for the heartbeat (Linux /proc, stdlib)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def rss_mb() -> float:
    """Resident memory of this process in MB (0 where /proc is not available)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def disk_free_mb(path: Path) -> float:
    try:
        path.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(path).free / 1e6
    except OSError:
        return 0.0


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
