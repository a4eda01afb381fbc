"""A unit component that does one job every few seconds on its own thread.

The unit agent's background jobs (the unanswered-questions upload, the broker-login check)
share this shape: `start(ctx)` reads the interval (from the constructor, else the setting),
does nothing when it is 0 or the job is off, and runs `_loop` on a daemon thread; `stop()`
ends it within a round. Subclasses give `name`, `thread_name`, `configured_interval(ctx)`,
`enabled(ctx)` and `_loop()` (which waits on `self._stop`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod


class PeriodicComponent(ABC):
    name = "periodic"
    thread_name = "periodic"

    def __init__(self, interval_s: float | None = None) -> None:
        self.ctx = None
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def configured_interval(self, ctx) -> float:
        """The interval setting (seconds; 0 turns the job off)."""

    def enabled(self, ctx) -> bool:
        return True

    def start(self, ctx) -> None:
        self.ctx = ctx
        every = self.interval_s if self.interval_s is not None else self.configured_interval(ctx)
        if not every or not self.enabled(ctx):
            return
        self.interval_s = every
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    @abstractmethod
    def _loop(self) -> None:
        """The job's rounds, until `self._stop` is set."""
