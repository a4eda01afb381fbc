"""Start child processes that cannot outlive their parent, and stop them all.

Each child gets its own process group (so its own children stop with it) and, on Linux,
PR_SET_PDEATHSIG so that even a SIGKILLed parent leaves no orphan. The standard library
has no portable "die with parent" switch, hence the small ctypes call.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class ProcessSpec:
    """A child process of the dev stack."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_port: int | None = None  # TCP port on ready_host that is open once it is ready
    ready_host: str = "127.0.0.1"
    urls: list[tuple[str, str]] = field(default_factory=list)  # (label, url) printed once ready
    ready_timeout_s: float = 30.0


class Child:
    """One started ProcessSpec."""

    def __init__(self, spec: ProcessSpec, log_dir: Path) -> None:
        self.spec = spec
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{spec.name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ)
        env.update(spec.env)
        self.proc = subprocess.Popen(
            list(spec.argv), env=env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout_s: float = 8.0) -> None:
        """SIGTERM the child's process group, then SIGKILL it if it lingers."""
        if self.alive():
            _signal_group(self.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.alive():
            _signal_group(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            pass
        # Anything the child left in its group goes too.
        _signal_group(self.proc.pid, signal.SIGKILL)
        self._log.close()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def python_module_argv(*args: str) -> list[str]:
    """argv that runs `posko ARGS` with this interpreter.

    `-P`: the working directory is not put on sys.path. Services run in their state
    directory, which holds folders named like Posko's packages (the hub keeps its files
    under `hub/`); with the working directory first on the path, `import hub.kb` found the
    folder `hub/kb` there instead of the module.
    """
    return [sys.executable, "-P", "-m", "posko", *args]
