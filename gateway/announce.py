"""Talk-group announcements on a unit, as pure logic: which ones to speak.

The dispatcher's console publishes `tg/{group}/announce` as `{"text", "from", "time"}`
(QoS 1, hub/console.py). A unit speaks those of the groups it hears (its selected group and
the groups it scans). QoS 1 and a broker's queue for an offline unit can deliver one twice,
or hours late after a long time offline, so `AnnouncementFilter` refuses:

* duplicates: the same sender, time and text (in any group) within `2 * max_age_s`;
* stale ones: older than `max_age_s` by their time stamp against the unit's clock;
* the unit's clock may be wrong (a Pi has no real-time clock, and keeps its last time
  until NTP answers): an announcement from more than `max_age_s` in the future cannot be
  judged by the clock, so it is judged against the newest announcement this unit has
  accepted instead (older than that by more than `max_age_s`: stale), and otherwise spoken;
* waiting too long on the unit: whatever the clocks say, an announcement is dropped once it
  has waited `max_age_s` (by the monotonic clock, from the moment the unit received it)
  minus the age it already had, e.g. behind a long run of spurts.

No clock, no socket: every call takes the wall-clock and monotonic times.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass

from gateway.errors import BadAnnouncement

MAX_TEXT = 1000  # characters; the console sends at most 280
_REMEMBERED = 256  # duplicate keys kept at most


@dataclass(frozen=True, slots=True)
class Announcement:
    """One announcement as received: `time` is the sender's clock (Unix seconds)."""

    group: str
    text: str
    sender: str
    time: float

    @property
    def key(self) -> tuple[str, float, str]:
        return (self.sender, round(self.time, 3), self.text)

    @classmethod
    def from_json(cls, group: str, payload: bytes) -> Announcement:
        """BadAnnouncement unless `payload` is a JSON object with a non-empty `text`, a
        string `from` and a numeric `time`."""
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadAnnouncement(f"announcement is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadAnnouncement("announcement is not a JSON object")
        text, sender, at = data.get("text"), data.get("from", ""), data.get("time")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise BadAnnouncement(f"announcement 'text' must be 1-{MAX_TEXT} characters")
        if not isinstance(sender, str):
            raise BadAnnouncement("announcement 'from' must be a string")
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise BadAnnouncement("announcement 'time' must be a number (Unix seconds)")
        return cls(group=group, text=" ".join(text.split()), sender=sender, time=float(at))


@dataclass(frozen=True, slots=True)
class Admitted:
    """An announcement to speak before `expires_ms` (monotonic ms)."""

    announcement: Announcement
    expires_ms: float
    age_s: float | None  # its age when received, None when the unit's clock could not tell


class AnnouncementFilter:
    """Duplicates and stale announcements out; `max_age_s` in seconds."""

    def __init__(self, max_age_s: float = 300.0) -> None:
        self.max_age_s = float(max_age_s)
        self._seen: OrderedDict[tuple[str, float, str], float] = OrderedDict()  # key -> mono ms
        self._newest: float | None = None  # the sender's time of the newest accepted one
        self.refused: dict[str, int] = {"duplicate": 0, "stale": 0}

    def admit(self, ann: Announcement, wall_s: float, mono_ms: float) -> Admitted | str:
        """Admitted, or why not ("duplicate", "stale")."""
        self._forget(mono_ms)
        if ann.key in self._seen:
            self.refused["duplicate"] += 1
            return "duplicate"
        age = wall_s - ann.time
        limit = self.max_age_s
        if age > limit:
            return self._stale()
        if age < -limit:
            # From the future: this unit's clock is behind (or the sender's ahead).
            if self._newest is not None and self._newest - ann.time > limit:
                return self._stale()
            judged: float | None = None
            left = limit
        else:
            judged = max(0.0, age)
            left = limit - judged
        self._seen[ann.key] = mono_ms
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        self._newest = ann.time if self._newest is None else max(self._newest, ann.time)
        return Admitted(ann, mono_ms + left * 1000.0, judged)

    def _stale(self) -> str:
        self.refused["stale"] += 1
        return "stale"

    def _forget(self, mono_ms: float) -> None:
        horizon = mono_ms - 2 * self.max_age_s * 1000.0
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if at >= horizon:
                break
            self._seen.popitem(last=False)
