"""Group commit for report intake: many requests, one transaction, one fsync.

With SQLite at `synchronous=FULL` every commit waits for the disk; one commit per report
caps intake at the disk's fsync rate. Each worker process runs one writer thread that
takes every report waiting at that moment, writes them in one transaction (a savepoint
per report, see intake.write_report) and commits once; each request then gets its own
answer. Nothing is answered before its commit has returned, so a 201 is still durable.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from hub import intake
from hub.db import Sessions
from hub.validation import CleanReport

log = logging.getLogger(__name__)

UNAVAILABLE = (503, {"error": "unavailable", "message": "the hub could not store the report; try again"})


@dataclass
class _Job:
    unit: Any
    clean: CleanReport
    digest: str
    done: threading.Event = field(default_factory=threading.Event)
    answer: intake.Answer | None = None


class ReportBatcher:
    """One writer thread per process; `submit` blocks until the report is committed."""

    def __init__(self, sessions: Sessions, max_batch: int = 64, wait_s: float = 60.0) -> None:
        self.sessions = sessions
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._lock = threading.Lock()
        self._pid = 0  # the writer thread belongs to the process that started it (fork-safe)
        self.batches = 0
        self.reports = 0

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue()
                threading.Thread(target=self._run, name="report-writer", daemon=True).start()
                self._pid = os.getpid()

    def submit(self, unit: Any, clean: CleanReport, digest: str) -> intake.Answer:
        self._ensure_thread()
        job = _Job(unit=unit, clean=clean, digest=digest)
        self._queue.put(job)
        if not job.done.wait(self.wait_s) or job.answer is None:
            return UNAVAILABLE
        return job.answer

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Job]) -> None:
        answers: list[intake.Answer] = []
        try:
            with self.sessions.writer() as db:
                for job in batch:
                    answers.append(intake.write_report(db, job.unit, job.clean, job.digest))
                db.commit()
        except Exception:  # disk full, database gone …: nobody is told "saved"
            log.exception("could not write a batch of %d reports", len(batch))
            answers = [UNAVAILABLE] * len(batch)
        self.batches += 1
        self.reports += len(batch)
        for job, answer in zip(batch, answers, strict=True):
            job.answer = answer
            job.done.set()
