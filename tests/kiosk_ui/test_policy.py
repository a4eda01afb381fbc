"""The sync policy, pure: backoff bounds, full jitter, the 5-minute cap, park decisions."""

from __future__ import annotations

import random

import pytest

from kiosk_ui import policy
from kiosk_ui.policy import Verdict


def test_ceiling_doubles_from_base_and_stops_at_the_cap() -> None:
    assert [policy.backoff_ceiling(n, 2.0, 300.0) for n in range(1, 10)] == [
        2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert policy.backoff_ceiling(10_000, 2.0, 300.0) == 300.0  # no overflow after weeks offline
    assert policy.DEFAULT_CAP_S == 300.0


@pytest.mark.parametrize("attempt", [1, 2, 5, 9, 50])
def test_full_jitter_stays_within_zero_and_the_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = policy.backoff_ceiling(attempt)
    delays = [policy.backoff_delay(attempt, rng) for _ in range(2000)]
    assert all(0.0 <= d <= ceiling for d in delays)
    assert max(delays) <= 300.0
    # full jitter: spread over the whole range, not bunched at the ceiling
    assert min(delays) < ceiling * 0.05 and max(delays) > ceiling * 0.95
    assert abs(sum(delays) / len(delays) - ceiling / 2) < ceiling * 0.05


def test_jitter_uses_the_given_random_source() -> None:
    class Fixed:
        def __init__(self, value: float) -> None:
            self.value = value

        def random(self) -> float:
            return self.value

    assert policy.backoff_delay(3, Fixed(0.0)) == 0.0
    assert policy.backoff_delay(3, Fixed(0.5)) == 4.0
    assert policy.backoff_delay(30, Fixed(0.999)) == pytest.approx(299.7)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        policy.backoff_ceiling(0)
    with pytest.raises(ValueError):
        policy.backoff_ceiling(1, base_s=0)


@pytest.mark.parametrize("status", [401, 403, 409, 413, 422])
def test_refusals_park_the_report_with_the_reason(status: int) -> None:
    decision = policy.classify_status(status, '{"message": "nomor diblokir"}')
    assert decision.verdict is Verdict.PARK
    assert decision.reason.startswith(str(status))
    assert "nomor diblokir" in decision.reason


def test_403_reason_says_blocked_and_401_says_re_enrol() -> None:
    assert "blocked" in policy.classify_status(403).reason
    assert "enrol" in policy.classify_status(401).reason


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_transient_answers_are_retried(status: int) -> None:
    assert policy.classify_status(status).verdict is Verdict.RETRY


@pytest.mark.parametrize("status", [200, 201])
def test_success_is_done(status: int) -> None:
    assert policy.classify_status(status).verdict is Verdict.DONE


def test_other_client_errors_park_and_network_failures_retry() -> None:
    assert policy.classify_status(404).verdict is Verdict.PARK
    assert policy.network_failure("ConnectionError: refused").verdict is Verdict.RETRY


def test_long_hub_detail_is_cut_to_one_line() -> None:
    reason = policy.classify_status(422, "x\n" * 1000).reason
    assert "\n" not in reason and len(reason) < 400


def test_due_and_purge_decisions() -> None:
    assert policy.is_due(100.0, 100.0) and not policy.is_due(99.9, 100.0)
    day = 86400.0
    assert policy.should_purge(15 * day, 0.0, 14)
    assert not policy.should_purge(13 * day, 0.0, 14)
    assert not policy.should_purge(1e12, None, 14)  # pending/parked: never purged
