"""The sync worker: sends pending reports and their photos to the hub, exactly once in effect.

At-least-once delivery (a report stays pending until the hub itself has acknowledged it,
naming its id and the digest of what it stored, and every photo it lacks by its hash) plus
the hub's idempotent intake (same id + same body = the original answer) gives exactly one
report at the hub, even when this process is killed between any two steps: every step's
result is committed to the outbox before the next.

Steps of one report: POST the report -> PUT each photo the hub lacks -> mark synced.
Decisions (retry, park, backoff delays) come from the pure `kiosk_ui.policy`; an answer
that is not the hub's (a captive portal's page, a redirect) is always a failed try.

What the field does, and what the worker does about it:
* the link comes back: the first thing the hub answers (probe or send) makes every waiting
  report due at once;
* the clock is stepped: intervals run on the monotonic clock, and a next attempt further
  ahead than the backoff cap is due now (`Outbox.due`); the hub's clock offset is learned
  on every probe and kept for the Lapor form's times;
* the disk is full: a storage error backs off like a network error (no tight loop), and
  `Outbox.stats()` says so for the heartbeat and `posko doctor`;
* a new token (re-enrolment): reports parked with 401 go back in the queue by themselves;
* proof of delivery: once a day (and on `posko outbox reconcile`) the ids and digests of the
  last days' synced reports are compared with the hub's receipts; what the hub lacks is sent
  again and reported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiosk_ui import policy
from kiosk_ui.outbox import Item, Outbox, OutboxError
from kiosk_ui.policy import Verdict
from posko.hubclient import Answer, HubClient, HubUnreachable
from posko.reports import digest

CLOCK_OFFSET_KEY = "clock_offset_s"  # outbox meta: the hub's time minus ours, seconds
RECONCILE_KEY = "reconcile_last"  # outbox meta: JSON of the last reconciliation
RECONCILE_EVERY_S = 86400.0
RECONCILE_DAYS = 2.0  # "that day's reports", with the day before for reports made near midnight
RECEIPTS_BATCH = 200

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
    """Runs `run_once` in a background thread until stopped; `wake()` makes it look now.

    `clock` is the wall clock (stored attempt times); `monotonic` times the worker's own
    intervals (probe, purge, reconcile), so a clock stepped back does not stop them.
    """

    def __init__(self, outbox: Outbox, client: HubClient, *, interval_s: float = 5.0,
                 base_s: float = policy.DEFAULT_BASE_S, cap_s: float = policy.DEFAULT_CAP_S,
                 probe_s: float = 10.0, retention_days: float = 14.0,
                 reconcile_every_s: float = RECONCILE_EVERY_S, link: LinkState | None = None,
                 rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.outbox = outbox
        self.client = client
        self.interval_s = interval_s
        self.base_s = base_s
        self.cap_s = cap_s
        self.probe_s = probe_s
        self.retention_days = retention_days
        self.reconcile_every_s = reconcile_every_s
        self.link = link or LinkState()
        self.rng = rng or random.Random()
        self.clock = clock
        self.monotonic = monotonic
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_probe: float | None = None
        self._last_purge: float | None = None
        self._last_reconcile: float | None = None
        self._storage_failures = 0
        self._storage_until = 0.0  # monotonic: no pass before this after a storage error
        self._token_fp: str | None = None

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
            wait = None
            try:
                self.run_once()
            except OutboxError as exc:  # e.g. the disk is full: keep going, try later
                wait = self._storage_backoff(exc)
            except Exception:  # the worker must survive anything one report throws
                log.exception("sync: unexpected error")
            if wait is None:
                try:
                    wait = self._sleep_for()
                except OutboxError as exc:
                    wait = self._storage_backoff(exc)
            self._wake.wait(wait)
            self._wake.clear()

    def _storage_backoff(self, exc: Exception) -> float:
        """A storage error waits like a network error: exponential, full jitter, capped."""
        self._storage_failures += 1
        delay = max(0.5, policy.backoff_delay(self._storage_failures, self.rng,
                                              base_s=self.base_s, cap_s=self.cap_s))
        self._storage_until = self.monotonic() + delay
        log.error("sync: outbox storage error (%s); next pass in %.1f s", exc, delay)
        return delay

    def _sleep_for(self) -> float:
        wait = self.interval_s
        nxt = self.outbox.next_due_at(self.clock(), self.cap_s)
        if nxt is not None:
            wait = min(wait, max(0.0, nxt - self.clock()))
        wait = min(wait, self.probe_s)
        return max(0.05, wait)

    def _elapsed(self, since: float | None, every_s: float) -> bool:
        return since is None or self.monotonic() - since >= every_s

    # -- one pass ----------------------------------------------------------------------
    def run_once(self) -> int:
        """Probe if due, send what is due, reconcile once a day. Returns reports synced."""
        if self.monotonic() < self._storage_until:
            return 0
        token = self.client.token()
        if not token:
            self.link.enrolled = False
            return 0
        self.link.enrolled = True
        self._notice_token(token)
        if self._elapsed(self._last_probe, self.probe_s):
            # Probing also while online keeps the screens' online/offline dot honest when
            # nothing is waiting to be sent.
            self.probe()
        if self._elapsed(self._last_purge, 3600):
            self._last_purge = self.monotonic()
            purged = self.outbox.purge_synced(self.retention_days * 86400.0, now=self.clock())
            self.outbox.sweep_orphans(min_age_s=600)  # leftovers of a crash mid-save
            if purged:
                log.info("sync: purged %d synced reports older than %s days", purged, self.retention_days)
        synced = 0
        for item in self.outbox.due(self.clock(), max_wait_s=self.cap_s):
            if self._stop.is_set():
                break
            result = self.send(item)
            if result is Verdict.DONE:
                synced += 1
            elif result is None:  # the link is down: stop this pass, the probe takes over
                break
        if self.link.online and self.reconcile_every_s and self._elapsed(self._last_reconcile,
                                                                         self.reconcile_every_s):
            self._last_reconcile = self.monotonic()
            try:
                self.reconcile()
            except HubUnreachable as exc:
                self._offline(str(exc))
        self._storage_failures = 0
        return synced

    def probe(self) -> bool:
        """Ask the hub whether it is there (and its time); True when the hub itself answered."""
        self._last_probe = self.monotonic()
        result = self.client.probe()
        if not result.ok:
            self._offline(result.reason or "hub not answering")
            return False
        if result.offset_s is not None:
            self._keep_offset(result.offset_s)
        self._online()
        return True

    def _keep_offset(self, offset_s: float) -> None:
        old = self.outbox.get_meta(CLOCK_OFFSET_KEY)
        try:
            changed = not old or abs(float(old) - offset_s) > 1.0
        except ValueError:
            changed = True
        if changed:  # written only when it moved: no disk write per probe
            try:
                self.outbox.set_meta(CLOCK_OFFSET_KEY, f"{offset_s:.3f}")
            except OutboxError as exc:  # a full disk must not stop the sending
                log.warning("sync: clock offset not kept: %s", exc)
                return
            if abs(offset_s) > 120:
                log.warning("sync: this kiosk's clock is %.0f s off the hub's", -offset_s)

    def _online(self) -> None:
        """The hub itself answered: if it had been away, every waiting report is due now."""
        if self.link.set(True):
            woken = self.outbox.wake_all()
            log.info("sync: hub reachable again; %d waiting reports due now", woken)

    def _offline(self, reason: str) -> None:
        self.link.set(False, reason)

    def _notice_token(self, token: str) -> None:
        """A token this worker has not seen (a new enrolment): retry what 401 parked."""
        fp = hashlib.sha256(token.encode()).hexdigest()[:16]
        if fp == self._token_fp:
            return
        if self.outbox.get_meta("token_fp") != fp:  # kept across restarts of the kiosk
            try:
                woken = self.outbox.retry_parked("401")
                self.outbox.set_meta("token_fp", fp)
            except OutboxError as exc:  # a full disk: try again on the next pass
                log.warning("sync: new token noted later: %s", exc)
                return
            if woken:
                log.info("sync: new hub token; %d reports parked with 401 queued again", woken)
        self._token_fp = fp

    def send(self, item: Item) -> Verdict | None:
        """Advance one report as far as it goes. None means the hub was unreachable."""
        try:
            if not item.posted:
                answer = self.client.post_report(self.outbox.body_bytes(item.id))
                if not answer.from_hub:
                    return self._not_the_hub(item, answer)
                decision = policy.classify_status(answer.status, answer.message())
                if decision.verdict is Verdict.DONE:
                    problem = receipt_problem(item, answer)
                    if problem:
                        return self._settle(item, policy.Decision(Verdict.RETRY, problem))
                    data = answer.data
                    listed = data.get("missing_photos")
                    if isinstance(listed, list):
                        missing = [m for m in listed if isinstance(m, str)]
                    else:  # no list in the answer: upload them all (a repeat is a no-op)
                        missing = [p["sha256"] for p in item.photos]
                    self.outbox.mark_posted(item.id, str(data.get("state", "")), missing,
                                            str(data.get("digest", "")))
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
                if not answer.from_hub:
                    return self._not_the_hub(item, answer)
                decision = policy.classify_status(answer.status, answer.message())
                if decision.verdict is Verdict.DONE and answer.data.get("sha256") != photo["sha256"]:
                    decision = policy.Decision(Verdict.RETRY, "the photo answer does not name this photo")
                if decision.verdict is not Verdict.DONE:
                    return self._settle(item, decision)
                self.outbox.mark_photo_uploaded(item.id, photo["sha256"])
        except HubUnreachable as exc:
            self._offline(str(exc))
            self._last_probe = self.monotonic()
            self._settle(item, policy.network_failure(str(exc)))
            return None
        self._online()
        self.outbox.mark_synced(item.id, now=self.clock())
        log.info("sync: report %s (%s) synced", item.id, item.ticket)
        return Verdict.DONE

    def _not_the_hub(self, item: Item, answer: Answer) -> None:
        """A captive portal or proxy answered: a failed try, and the link is not up."""
        reason = answer.describe()
        self._offline(reason)
        self._last_probe = self.monotonic()
        self._settle(item, policy.Decision(Verdict.RETRY, reason))
        return None

    def _settle(self, item: Item, decision: policy.Decision) -> Verdict:
        if decision.verdict is Verdict.PARK:
            self._online()  # the hub answered: the link itself is fine
            self.outbox.park(item.id, decision.reason)
            log.warning("sync: report %s parked: %s", item.id, decision.reason)
        else:
            delay = policy.backoff_delay(item.attempts + 1, self.rng, base_s=self.base_s, cap_s=self.cap_s)
            self.outbox.mark_retry(item.id, decision.reason, self.clock() + delay)
            log.info("sync: report %s retry in %.1f s: %s", item.id, delay, decision.reason)
        return decision.verdict

    # -- proof of delivery -------------------------------------------------------------
    def reconcile(self, days: float = RECONCILE_DAYS) -> dict[str, Any]:
        """Compare the last `days` of synced reports with the hub's receipts.

        A report the hub lacks is queued again (resent); one whose digest differs is
        reported (the hub holds another body for that id). Returns the summary, which is
        also kept in the outbox's meta for `posko outbox reconcile --last` and the logs.
        Raises HubUnreachable when the hub cannot be asked.
        """
        since = self.clock() - days * 86400.0
        expected = dict(self.outbox.synced_since(since))
        ids = list(expected)
        receipts: dict[str, str] = {}
        for start in range(0, len(ids), RECEIPTS_BATCH):
            chunk = ids[start:start + RECEIPTS_BATCH]
            answer = self.client.receipts(chunk)
            if answer.status != 200 or not answer.from_hub or not isinstance(answer.data.get("receipts"), dict):
                raise HubUnreachable(f"receipts not given: {answer.describe() if not answer.from_hub else answer.status}")
            receipts.update({k: v for k, v in answer.data["receipts"].items() if isinstance(v, str)})
        missing = [i for i in ids if i not in receipts]
        mismatched = [i for i in ids if i in receipts and receipts[i] != expected[i]]
        for report_id in missing:
            self.outbox.requeue(report_id, "reconcile: the hub did not hold this report; sent again")
        self.outbox.mark_reconciled([i for i in ids if i not in missing], now=self.clock())
        summary = {"at": self.clock(), "days": days, "checked": len(ids),
                   "at_hub": len(ids) - len(missing), "missing": missing, "resent": len(missing),
                   "mismatched": mismatched}
        self.outbox.set_meta(RECONCILE_KEY, json.dumps(summary))
        if missing or mismatched:
            log.warning("sync: reconcile: %d of %d reports missing at the hub (resent), %d differ",
                        len(missing), len(ids), len(mismatched))
        else:
            log.info("sync: reconcile: all %d reports of the last %g days are at the hub", len(ids), days)
        if missing:
            self.wake()
        return summary


def receipt_problem(item: Item, answer: Answer) -> str:
    """Why a 200/201 is not the hub's receipt for this report ("" when it is).

    The receipt must name the report's id and the digest of the body the kiosk sent.
    """
    data = answer.data if isinstance(answer.data, dict) else {}
    if data.get("id") != item.id:
        return "the answer does not name this report's id (not the hub's receipt)"
    if data.get("digest") != digest(item.body):
        return "the hub's receipt names another digest than this report's"
    return ""
