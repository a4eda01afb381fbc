"""The sync worker's decisions as pure functions: how long to wait, and what an answer means.

No I/O here: the worker (`kiosk_ui.sync`) feeds in attempt counts, HTTP status codes and a
random source, and gets back delays and verdicts. Full jitter (a uniform draw between 0
and the exponential ceiling) keeps a fleet of kiosks coming back online from hitting the
hub in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

DEFAULT_BASE_S = 2.0
DEFAULT_CAP_S = 300.0  # 5 minutes: the longest a report waits once the link is back


def backoff_ceiling(attempt: int, base_s: float = DEFAULT_BASE_S, cap_s: float = DEFAULT_CAP_S) -> float:
    """The upper bound of the delay after `attempt` failures (1 = first failure), in seconds.

    base * 2**(attempt-1), never above cap. Raises ValueError for attempt < 1 or bad bounds.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if base_s <= 0 or cap_s <= 0:
        raise ValueError("base_s and cap_s must be positive")
    # Exponent clamped so a report failing for weeks cannot overflow a float.
    return min(cap_s, base_s * (2.0 ** min(attempt - 1, 60)))


def backoff_delay(attempt: int, rng: random.Random | None = None, *,
                  base_s: float = DEFAULT_BASE_S, cap_s: float = DEFAULT_CAP_S) -> float:
    """A full-jitter delay in seconds: uniform in [0, backoff_ceiling(attempt)]."""
    ceiling = backoff_ceiling(attempt, base_s, cap_s)
    draw = (rng or random).random()
    return draw * ceiling


class Verdict(Enum):
    """What to do with a report after one answer from the hub."""

    DONE = "done"  # the hub has it: mark the report synced
    RETRY = "retry"  # transient: try again after a backoff delay
    PARK = "park"  # the hub refuses it for good: keep it, stop retrying, show the reason


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str  # short machine-friendly reason, shown to maintainers in `posko outbox`


# Answers that will not change by sending the same thing again.
_PARK_REASONS = {
    401: "unauthorized: the unit's token is missing, revoked or wrong (re-enrol the unit)",
    403: "forbidden: the hub refused this report (blocked phone number)",
    409: "conflict: the hub holds a different report with this id",
    413: "too large: the hub's size limit refuses this report or photo",
    422: "invalid: the hub says some fields are not valid",
}


def classify_status(status: int, detail: str = "") -> Decision:
    """Map one HTTP status of a report or photo request to a decision.

    200/201: done. 401/403/409/413/422: park (with the hub's detail appended). Other 4xx
    are parked too (a request the hub cannot understand will not improve by repeating),
    except 408 and 429, which are retried. 5xx and anything else: retry.
    """
    if status in (200, 201, 204):
        return Decision(Verdict.DONE, "ok")
    if status in _PARK_REASONS:
        reason = _PARK_REASONS[status]
    elif status in (408, 429):
        return Decision(Verdict.RETRY, f"http {status}")
    elif 400 <= status < 500:
        reason = f"rejected: http {status}"
    else:
        return Decision(Verdict.RETRY, f"http {status}")
    detail = " ".join(detail.split())[:300]
    return Decision(Verdict.PARK, f"{status} {reason}" + (f" - {detail}" if detail else ""))


def network_failure(error: str) -> Decision:
    """A connection that failed, was cut or timed out is always worth another try."""
    return Decision(Verdict.RETRY, f"network: {' '.join(error.split())[:200]}")


def is_due(now: float, next_attempt_at: float) -> bool:
    """True when a pending report may be sent at `now` (seconds, same clock)."""
    return now >= next_attempt_at


def should_purge(now: float, synced_at: float | None, retention_days: float) -> bool:
    """True when a synced report is older than the retention and may be deleted.

    Only synced reports are ever purged; pending or parked ones (synced_at None) never are.
    """
    if synced_at is None:
        return False
    return now - synced_at >= retention_days * 86400.0
