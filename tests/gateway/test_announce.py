"""Which announcements a unit speaks, as numbers: stale, duplicate, a wrong clock, the wire."""

from __future__ import annotations

import json

import pytest

from gateway.announce import Admitted, Announcement, AnnouncementFilter
from gateway.errors import BadAnnouncement

NOW = 1_800_000_000.0  # the unit's wall clock (s)


def ann(text: str = "Jalan Pantura ditutup", at: float = NOW, sender: str = "Bripka Dewi",
        group: str = "batang-kota") -> Announcement:
    return Announcement(group=group, text=text, sender=sender, time=at)


def test_the_console_payload_parses_and_bad_ones_are_refused() -> None:
    payload = json.dumps({"text": "  Jalan   ditutup ", "from": "Dewi", "time": 1.5}).encode()
    a = Announcement.from_json("g", payload)
    assert (a.group, a.text, a.sender, a.time) == ("g", "Jalan ditutup", "Dewi", 1.5)
    for bad in (b"not json", b"[1]", b'{"text": "", "from": "x", "time": 1}',
                b'{"text": "x", "from": 3, "time": 1}', b'{"text": "x", "from": "a", "time": "now"}',
                b'{"text": "x", "time": true}', b"\xff\xfe"):
        with pytest.raises(BadAnnouncement):
            Announcement.from_json("g", bad)


def test_fresh_is_admitted_with_the_rest_of_its_time_to_wait() -> None:
    f = AnnouncementFilter(max_age_s=300)
    got = f.admit(ann(at=NOW - 100), NOW, mono_ms=5_000)
    assert isinstance(got, Admitted)
    assert got.age_s == pytest.approx(100)
    assert got.expires_ms == pytest.approx(5_000 + 200_000)  # 300 s minus the 100 it already had


def test_stale_and_duplicates_are_refused() -> None:
    f = AnnouncementFilter(max_age_s=300)
    assert f.admit(ann(at=NOW - 301), NOW, 0) == "stale"  # replayed after a long time offline
    assert isinstance(f.admit(ann(), NOW, 0), Admitted)
    assert f.admit(ann(), NOW + 1, 1000) == "duplicate"  # QoS 1 delivered it again
    assert f.admit(ann(group="ojol-batang"), NOW + 1, 1000) == "duplicate"  # the same one, other group
    assert isinstance(f.admit(ann(text="Lain"), NOW, 1000), Admitted)
    assert f.refused == {"duplicate": 2, "stale": 1}
    # Forgotten after twice the age limit: the same text sent again later is spoken again.
    assert isinstance(f.admit(ann(at=NOW + 700), NOW + 700, 700_000), Admitted)


def test_a_unit_clock_far_behind_judges_by_the_newest_announcement_and_the_wait() -> None:
    f = AnnouncementFilter(max_age_s=300)
    booted = 1_700_000_000.0  # a Pi that has not reached NTP: its clock is months behind
    first = f.admit(ann(at=NOW), booted, mono_ms=0)
    assert isinstance(first, Admitted)
    assert first.age_s is None  # the clock cannot tell its age
    assert first.expires_ms == 300_000  # but it is not spoken after waiting 300 s on the unit
    # An old one replayed from the broker's queue, older than the newest one seen: stale.
    assert f.admit(ann(text="Lama", at=NOW - 3600), booted, 10) == "stale"
    assert isinstance(f.admit(ann(text="Baru", at=NOW - 60), booted, 20), Admitted)
