"""Send the unit's unanswered-questions log to the hub, for the command center's KB editors.

The log (assistant/unanswered.py) is append-only JSON lines, already without personal data.
Every `[unit] unanswered_upload_s` the component sends the lines after the last one the hub
acknowledged (`POST /api/v1/unanswered` with the unit's token), each with its line number
`n`, so a resend after a lost answer is counted once by the hub while two residents asking
the same on one day stay two lines. The count of acknowledged lines is kept in
`<log>.sent`; a log that became shorter (deleted, replaced) starts again from its first line.
Nothing is sent while the hub is away; the next round tries again.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from firmware.errors import FirmwareError
from firmware.periodic import PeriodicComponent
from posko.enroll import read_token
from posko.hubclient import HubClient, HubUnreachable

log = logging.getLogger(__name__)

BATCH = 200  # lines per request (the hub takes at most 500)


class UploadError(FirmwareError, OSError):
    """The hub did not take the lines now."""


def log_path(settings) -> Path:
    """The configured unanswered log (relative paths are inside the state directory)."""
    path = Path(settings.assistant.unanswered_log).expanduser()
    return path if path.is_absolute() else settings.state_dir / path


def pending(path: Path, sent: int, limit: int = BATCH) -> tuple[list[dict[str, Any]], int]:
    """(items to send, total lines) of the log after the first `sent` lines.

    A torn or unreadable line is skipped (it still counts as a line). Pure file reading."""
    items: list[dict[str, Any]] = []
    total = 0
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        return [], 0
    with handle:
        for n, line in enumerate(handle):
            total = n + 1
            if n < sent or len(items) >= limit:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("q"), str) and row["q"].strip():
                items.append({"n": n, "day": str(row.get("day", "")), "q": row["q"][:500],
                              "key": str(row.get("key") or row["q"])[:500],
                              "action": str(row.get("action") or "fallback"), "best": row.get("best") or ""})
    return items, total


class UnansweredUploader(PeriodicComponent):
    """A UnitComponent named "unanswered"."""

    name = "unanswered"
    thread_name = "unanswered-upload"

    def __init__(self, interval_s: float | None = None) -> None:
        super().__init__(interval_s)
        self.sent_total = 0
        self.last_error = ""

    def configured_interval(self, ctx) -> float:
        return ctx.settings.unit.unanswered_upload_s

    def enabled(self, ctx) -> bool:
        return bool(ctx.settings.assistant.log_unanswered)

    def status(self) -> dict[str, Any]:
        return {"sent": self.sent_total, "error": self.last_error}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.upload_once()
            except Exception as exc:  # the hub away, a full disk: the next round tries again
                self.last_error = str(exc)[:200]
                log.info("unanswered questions not sent yet: %s", exc)

    def upload_once(self) -> int:
        """Send every new line (in batches); returns how many lines the hub acknowledged.

        Raises UploadError when the hub is away or refuses."""
        s = self.ctx.settings
        path = log_path(s)
        marker = path.with_name(path.name + ".sent")
        token = read_token(s)
        if token is None:
            raise UploadError("this unit is not enrolled (posko enroll); no token for the hub")
        hub = HubClient(s.kiosk.hub_url, lambda: token, timeout_s=s.kiosk.http_timeout_s,
                        ca_file=s.kiosk.hub_ca_file)  # the pinned hub certificate, as every caller
        done = 0
        while True:
            sent = _read_count(marker)
            items, total = pending(path, sent)
            if total < sent:  # the log was replaced: start again from its first line
                _write_count(marker, 0)
                continue
            if not items:
                if total > sent:
                    _write_count(marker, total)  # only unreadable lines were left
                break
            try:
                answer = hub.post_unanswered(items)
            except HubUnreachable as exc:
                raise UploadError(str(exc)) from None
            if not (answer.from_hub and answer.status == 200):
                raise UploadError(f"hub answered {answer.status}: {answer.message()[:200]}")
            _write_count(marker, items[-1]["n"] + 1)
            done += len(items)
        self.sent_total += done
        self.last_error = ""
        return done


def _read_count(path: Path) -> int:
    try:
        return max(0, int(path.read_text().strip() or 0))
    except (FileNotFoundError, ValueError):
        return 0


def _write_count(path: Path, count: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{count}\n")
    os.replace(tmp, path)
