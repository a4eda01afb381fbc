"""What to do with an incoming alert so that one unit cannot bury the dashboard (pure logic).

A unit in trouble (a stuck panic button, a replaying attacker with its token) may send
hundreds of alerts a second. The officer needs one card that says "this unit, N times",
not 300 cards. The rule, for each alert from a unit:

1. An open alert of the same unit with the same source and text, last heard within
   `collapse_s`, takes it as a repeat (its count goes up).
2. Otherwise, when the unit already raised `rate_limit` alerts within `window_s` and one of
   them is still open, the newest open one takes it as a repeat (nothing is lost: the count
   says how many came).
3. Otherwise it is a new alert. The first alert of a unit always is: an emergency is
   never held back by the limit, only merged into one that is already on every screen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FloodPolicy:
    rate_limit: int = 5  # new alerts per unit within window_s before they are merged
    window_s: float = 60.0
    collapse_s: float = 600.0  # how long an open alert takes identical repeats

    @property
    def lookback_s(self) -> float:
        """How far back `decide` needs to see a unit's alerts."""
        return max(self.window_s, self.collapse_s)


@dataclass(frozen=True)
class Recent:
    """One stored alert of the unit, as the policy sees it."""

    id: str
    source: str
    text: str
    received_at: dt.datetime
    last_at: dt.datetime  # its last repeat, or received_at
    open: bool


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def decide(policy: FloodPolicy, recent: Sequence[Recent], source: str, text: str,
           now: dt.datetime) -> str | None:
    """The id of the stored alert this one repeats, or None when it is a new alert.

    `recent`: the unit's alerts received within `policy.lookback_s` plus its open ones, in
    any order; times are naive UTC like `now`."""
    newest_first = sorted(recent, key=lambda r: r.received_at, reverse=True)
    open_ = [r for r in newest_first if r.open]
    for r in open_:
        if r.source == source and _same_text(r.text, text) \
                and (now - r.last_at).total_seconds() <= policy.collapse_s:
            return r.id
    in_window = [r for r in newest_first if (now - r.received_at).total_seconds() < policy.window_s]
    if open_ and len(in_window) >= policy.rate_limit:
        return open_[0].id
    return None
