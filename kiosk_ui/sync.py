"""The sync worker: sends pending reports and their photos to the hub, exactly once in effect.

At-least-once delivery (a report stays pending until the hub has answered 200/201 for it
and for every photo it lacks) plus the hub's idempotent intake (same id + same body = the
original answer) gives exactly one report at the hub, even when this process is killed
between any two steps: every step's result is committed to the outbox before the next.

Steps of one report: POST the report -> PUT each photo the hub lacks -> mark synced.
Decisions (retry, park, backoff delays) come from the pure `kiosk_ui.policy`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk_ui import policy
from kiosk_ui.outbox import Item, Outbox, OutboxError
from kiosk_ui.policy import Verdict
from posko.hubclient import HubClient, HubUnreachable

log = logging.getLogger(__name__)


@dataclass
class LinkState:
    """What the kiosk knows about its link to the hub (read by the screens)."""

    online: bool | None = None  # None: not known yet
    enrolled: bool = True
    last_ok: float = 0.0
    last_error: str = ""
    changed: threading.Event = field(default_factory=threading.Event)

    def set(self, online: bool, error: str = "") -> bool:
        """Record a result; True when this changes offline -> online."""
        came_back = online and self.online is False
        if online:
            self.last_ok = time.time()
            self.last_error = ""
        else:
            self.last_error = error
        self.online = online
        return came_back


class SyncWorker:
    """Runs `run_once` in a background thread until stopped; `wake()` makes it look now."""

    def __init__(self, outbox: Outbox, client: HubClient, *, interval_s: float = 5.0,
                 base_s: float = policy.DEFAULT_BASE_S, cap_s: float = policy.DEFAULT_CAP_S,
                 probe_s: float = 10.0, retention_days: float = 14.0,
                 blocklist_refresh_s: float = 600.0, link: LinkState | None = None,
                 rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.outbox = outbox
        self.client = client
        self.interval_s = interval_s
        self.base_s = base_s
        self.cap_s = cap_s
        self.probe_s = probe_s
        self.retention_days = retention_days
        self.blocklist_refresh_s = blocklist_refresh_s
        self.link = link or LinkState()
        self.rng = rng or random.Random()
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_probe = 0.0
        self._last_purge = 0.0
        self._last_blocklist = 0.0

    # -- thread control ----------------------------------------------------------------
    def start(self) -> SyncWorker:
        self._thread = threading.Thread(target=self._loop, name="kiosk-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout_s)

    def wake(self) -> None:
        """A new report was committed, or a maintainer asked: look at the outbox now."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except OutboxError as exc:  # e.g. the disk is full: keep going, try later
                log.error("sync: outbox error: %s", exc)
            except Exception:  # the worker must survive anything one report throws
                log.exception("sync: unexpected error")
            self._wake.wait(self._sleep_for())
            self._wake.clear()

    def _sleep_for(self) -> float:
        wait = self.interval_s
        nxt = self.outbox.next_due_at()
        if nxt is not None:
            wait = min(wait, max(0.0, nxt - self.clock()))
        wait = min(wait, self.probe_s)
        return max(0.05, wait)

    # -- one pass ----------------------------------------------------------------------
    def run_once(self) -> int:
        """Probe if offline, refresh the block list, send what is due. Returns reports synced."""
        now = self.clock()
        if not self.client.token():
            self.link.enrolled = False
            return 0
        self.link.enrolled = True
        if now - self._last_probe >= self.probe_s:
            # Probing also while online keeps the screens' online/offline dot honest when
            # nothing is waiting to be sent.
            self._last_probe = now
            if self.client.ping():
                self._back_online()
            else:
                self.link.set(False, "hub not answering")
        if self.link.online is not False and now - self._last_blocklist >= self.blocklist_refresh_s:
            self.refresh_blocklist()
        if now - self._last_purge >= 3600:
            self._last_purge = now
            purged = self.outbox.purge_synced(self.retention_days * 86400.0, now=now)
            self.outbox.sweep_orphans(min_age_s=600)  # leftovers of a crash mid-save
            if purged:
                log.info("sync: purged %d synced reports older than %s days", purged, self.retention_days)
        synced = 0
        for item in self.outbox.due(now):
            if self._stop.is_set():
                break
            result = self.send(item)
            if result is Verdict.DONE:
                synced += 1
            elif result is None:  # the link is down: stop this pass, the probe takes over
                break
        return synced

    def _back_online(self) -> None:
        if self.link.set(True):
            woken = self.outbox.wake_all()
            log.info("sync: hub reachable again; %d waiting reports due now", woken)

    def refresh_blocklist(self) -> bool:
        """Fetch and keep the hub's blocked-phone keys. True when fetched."""
        self._last_blocklist = self.clock()
        try:
            answer = self.client.blocked_phones()
        except HubUnreachable as exc:
            self.link.set(False, str(exc))
            return False
        if answer.status != 200 or not isinstance(answer.data, dict):
            log.warning("sync: block list not fetched: http %s", answer.status)
            return False
        keys, meta = parse_blocklist(answer.data)
        self.outbox.set_blocklist(keys, meta)
        return True

    def send(self, item: Item) -> Verdict | None:
        """Advance one report as far as it goes. None means the hub was unreachable."""
        try:
            if not item.posted:
                answer = self.client.post_report(self.outbox.body_bytes(item.id))
                decision = policy.classify_status(answer.status, answer.message())
                if decision.verdict is Verdict.DONE:
                    data = answer.data if isinstance(answer.data, dict) else {}
                    listed = data.get("missing_photos")
                    if isinstance(listed, list):
                        missing = [m for m in listed if isinstance(m, str)]
                    else:  # no list in the answer: upload them all (a repeat is a no-op)
                        missing = [p["sha256"] for p in item.photos]
                    self.outbox.mark_posted(item.id, str(data.get("state", "")), missing)
                    item = self.outbox.get(item.id)
                else:
                    return self._settle(item, decision)
            for photo in item.photos:
                if photo["uploaded"]:
                    continue
                try:
                    data = self.outbox.read_photo(photo["sha256"])
                except OSError as exc:  # a lost photo file: maintainers must see it
                    return self._settle(item, policy.Decision(Verdict.PARK, f"photo file unreadable: {exc}"))
                answer = self.client.put_photo(photo["sha256"], data)
                decision = policy.classify_status(answer.status, answer.message())
                if decision.verdict is not Verdict.DONE:
                    return self._settle(item, decision)
                self.outbox.mark_photo_uploaded(item.id, photo["sha256"])
        except HubUnreachable as exc:
            self.link.set(False, str(exc))
            self._last_probe = self.clock()
            self._settle(item, policy.network_failure(str(exc)))
            return None
        self.link.set(True)
        self.outbox.mark_synced(item.id, now=self.clock())
        log.info("sync: report %s (%s) synced", item.id, item.ticket)
        return Verdict.DONE

    def _settle(self, item: Item, decision: policy.Decision) -> Verdict:
        if decision.verdict is Verdict.PARK:
            self.link.set(True)  # the hub answered: the link itself is fine
            self.outbox.park(item.id, decision.reason)
            log.warning("sync: report %s parked: %s", item.id, decision.reason)
        else:
            delay = policy.backoff_delay(item.attempts + 1, self.rng, base_s=self.base_s, cap_s=self.cap_s)
            self.outbox.mark_retry(item.id, decision.reason, self.clock() + delay)
            log.info("sync: report %s retry in %.1f s: %s", item.id, delay, decision.reason)
        return decision.verdict


def parse_blocklist(data: dict) -> tuple[list[str], dict[str, str]]:
    """The keys and the hashing parameters from the hub's `GET /blocked-phones` answer."""
    keys = data.get("hashes") or data.get("keys") or []
    keys = [k for k in keys if isinstance(k, str)]
    meta = {"blocklist_fetched_at": str(time.time())}
    # The hub sends its HMAC key with the hashes (hub `GET /api/v1/blocked-phones`), so the
    # kiosk can hash a typed number the same way while offline.
    value = data.get("key")
    if isinstance(value, str) and value:
        meta["blocklist_secret"] = value
    return keys, meta
