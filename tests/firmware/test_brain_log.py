"""Spoken questions the brain cannot answer reach the unanswered log, without personal data."""

from __future__ import annotations

from pathlib import Path

from firmware.voice.setup import load_brain_from_settings
from posko.config import load_settings


def test_unit_brain_logs_fallbacks_without_personal_data(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"POSKO_POSKO_STATE_DIR": str(tmp_path)})
    brain = load_brain_from_settings(settings)
    reply = brain.ask("jadwal kereta ke semarang besok jam berapa, nomor saya 081234567890")
    assert reply.action == "fallback"
    log = tmp_path / "assistant" / "unanswered.jsonl"
    text = log.read_text()
    assert "kereta" in text and "081234567890" not in text


def test_bench_brain_does_not_log(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"POSKO_POSKO_STATE_DIR": str(tmp_path)})
    brain = load_brain_from_settings(settings, log_unanswered=False)
    brain.ask("jadwal kereta ke semarang besok jam berapa")
    assert not (tmp_path / "assistant" / "unanswered.jsonl").exists()
