"""Unanswered questions are logged without personal data and reported by frequency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import load_brain
from assistant.unanswered import UnansweredLog, attach_log, scrub
from tests.assistant.conftest import FIXTURE_KB


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hp saya 0812-3456-7890 hilang", "hp saya [telepon] hilang"),
        ("telp +62 812 3456 7890 ya", "telp [telepon] ya"),
        ("nomor polisi B 1234 XYZ punya siapa", "nomor polisi [plat] punya siapa"),
        ("motor h4567ab dicuri", "motor [plat] dicuri"),
        ("nik saya 3325011234567890", "nik saya [angka]"),
        ("email budi.s@gmail.com", "email [email]"),
        ("nama saya Budi Santoso, mau tanya bank", "nama saya [nama], mau tanya bank"),
        ("nama saya budi mau tanya jadwal kereta", "nama saya [nama] mau tanya jadwal kereta"),
        ("saya bernama Siti Aminah dari Batang", "saya bernama [nama] dari Batang"),
        ("my name is John Smith and I need a train", "my name is [nama] and I need a train"),
        ("rumah di jl. melati no 12 kebanjiran", "rumah di [alamat] kebanjiran"),
        ("tinggal di rt 03 rw 05 desa x", "tinggal di [alamat] desa x"),
        ("sim c1 yg mati", "sim c1 yg mati"),  # a SIM class is not a plate
        ("jadwal kereta ke semarang", "jadwal kereta ke semarang"),
    ],
)
def test_scrub(raw: str, expected: str) -> None:
    assert scrub(raw) == expected


def test_log_and_report_by_frequency(tmp_path: Path) -> None:
    path = tmp_path / "assistant" / "unanswered.jsonl"
    brain = load_brain(FIXTURE_KB)
    log = UnansweredLog(path, brain.normalise)
    brain.on_unanswered = log.record
    for question in ["jadwal kereta ke semarang", "Jadwal kereta ke Semarang?",
                     "nama saya Budi, jadwal kereta ke semarang", "harga cabai hari ini",
                     "hp saya 081234567890 cuaca besok", "brp biaya skck"]:
        brain.ask(question)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5  # the answered SKCK question is not logged
    text = path.read_text(encoding="utf-8")
    assert "Budi" not in text and "081234567890" not in text
    assert all(set(r) == {"day", "q", "key", "action", "best", "confidence"} for r in rows)
    report = log.report()
    assert report[0].count == 2 and "kereta" in report[0].question
    assert {r.question for r in report} >= {"harga cabai hari ini", "hp saya [telepon] cuaca besok"}
    assert log.report(limit=1) == report[:1]


def test_report_of_a_missing_or_torn_log(tmp_path: Path) -> None:
    log = UnansweredLog(tmp_path / "none.jsonl")
    assert log.report() == []
    torn = tmp_path / "torn.jsonl"
    torn.write_text('{"day": "2026-11-27", "q": "a", "key": "a", "action": "fallback"}\n{"day": "20',
                    encoding="utf-8")
    assert [r.question for r in UnansweredLog(torn).report()] == ["a"]


def test_attach_log_follows_the_settings(tmp_path: Path) -> None:
    from posko.config import load_settings

    brain = load_brain(FIXTURE_KB)
    settings = load_settings(environ={"POSKO_POSKO_STATE_DIR": str(tmp_path)})
    log = attach_log(brain, settings)
    assert log.path == tmp_path / "assistant" / "unanswered.jsonl"
    brain.ask("harga cabai hari ini")
    assert [r.question for r in log.report()] == ["harga cabai hari ini"]
    off = load_settings(environ={"POSKO_POSKO_STATE_DIR": str(tmp_path),
                                 "POSKO_ASSISTANT_LOG_UNANSWERED": "false"})
    quiet = load_brain(FIXTURE_KB)
    attach_log(quiet, off)
    assert quiet.on_unanswered is None


def test_peek_answers_like_ask_but_never_logs(tmp_path: Path) -> None:
    """The voice judges the words heard so far (early endpointing) with peek: fragments of a
    sentence must not fill the KB editors' list of unanswered questions."""
    brain = load_brain(FIXTURE_KB)
    log = UnansweredLog(tmp_path / "unanswered.jsonl", brain.normalise)
    brain.on_unanswered = log.record
    fragment = "harga cabai hari"
    assert brain.peek(fragment).action == brain.ask(fragment).action
    assert [r.question for r in log.report()] == [fragment]  # once: by ask, not by peek
    brain.peek("jadwal kereta ke semarang")
    assert [r.question for r in log.report()] == [fragment]
