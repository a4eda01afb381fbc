"""The `posko ask` command-line contract, run as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.assistant.conftest import FIXTURE_KB

pytestmark = pytest.mark.timeout(60)


# The installed `posko` console script, as a person or a tool outside Posko runs it.
POSKO = Path(sys.executable).with_name("posko")


@pytest.fixture(scope="module")
def trained_fixture_model(fixture_brain, tmp_path_factory) -> Path:
    """The fixture KB's intent model, trained once for this module (as `posko ask` keeps it)."""
    path = tmp_path_factory.mktemp("models") / f"intent-{fixture_brain.intent.trained_on[:16]}.npz"
    fixture_brain.intent.save(path)
    return path


@pytest.fixture(autouse=True)
def _model_kept(state_dir: Path, trained_fixture_model: Path) -> None:
    """Each test's state dir holds the model a first `posko ask --kb` would have kept."""
    models = state_dir / "assistant" / "models"
    models.mkdir(parents=True)
    shutil.copy(trained_fixture_model, models / trained_fixture_model.name)


def test_posko_ask_keeps_the_model_it_trained_for_a_kb(state_dir: Path, tmp_path: Path) -> None:
    shutil.rmtree(state_dir / "assistant" / "models")
    kb = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB, kb)
    assert _posko("ask", "--kb", str(kb), "--no-log", "brp biaya skck").returncode == 0
    kept = list((state_dir / "assistant" / "models").glob("intent-*.npz"))
    assert len(kept) == 1  # trained once and kept: the next call loads it


def _posko(*args: str, stdin: str = "", env: dict | None = None,
           timeout: float = 50) -> subprocess.CompletedProcess:
    command = [str(POSKO)] if POSKO.exists() else [
        sys.executable, "-c", "from posko.cli import main; main()"]
    return subprocess.run([*command, *args], input=stdin, text=True,
                          capture_output=True, env=env or os.environ.copy(), timeout=timeout,
                          cwd=Path(__file__).resolve().parents[2])


def test_json_mode_answers_every_line_in_order(state_dir: Path) -> None:
    lines = [
        "pak, bikin es ka ce ka berapa ya",
        "Gaji pak kapolres berapa sih?",
        "tolonggg",
        "harga tiket kereta ke jakarta",
        "",
        '{"q": "how much is an skck", "lang": "en"}',
    ]
    result = _posko("ask", "--json", "--kb", str(FIXTURE_KB), stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)
    for obj in out:
        assert {"action", "text", "speech", "entry", "confidence"} <= set(obj)
        assert 0.0 <= obj["confidence"] <= 1.0
    assert [o["action"] for o in out] == ["answer", "refuse", "escalate", "fallback", "fallback",
                                         "answer"]
    assert out[0]["entry"] == "skck-biaya" and out[1]["entry"] is None
    assert out[5]["lang"] == "en" and "fee" in out[5]["text"]
    # The fallback was logged in the state directory, the others were not.
    log = state_dir / "assistant" / "unanswered.jsonl"
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["q"] for r in rows] == ["harga tiket kereta ke jakarta"]


def test_plain_question_prints_the_answer_with_sources(state_dir: Path) -> None:
    result = _posko("ask", "--kb", str(FIXTURE_KB), "brp", "biaya", "skck")
    assert result.returncode == 0, result.stderr
    assert "Biaya penerbitan SKCK Rp30.000" in result.stdout  # markdown bold removed
    assert "**" not in result.stdout
    assert "Sumber:" in result.stdout and "PP 76/2020" in result.stdout
    english = _posko("ask", "--kb", str(FIXTURE_KB), "--lang", "en", "skck fee")
    assert "Sources:" in english.stdout and "issuance fee" in english.stdout


def test_report_lists_most_frequent_unanswered(state_dir: Path) -> None:
    questions = "jadwal kereta ke semarang\nJadwal kereta ke Semarang?\nharga cabai hari ini\n"
    assert _posko("ask", "--json", "--kb", str(FIXTURE_KB), stdin=questions).returncode == 0
    result = _posko("ask", "--report", "--kb", str(FIXTURE_KB))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split()[0] == "2" and "kereta" in lines[1]
    assert "cabai" in lines[2]


def test_no_log_and_empty_report(state_dir: Path) -> None:
    assert _posko("ask", "--json", "--no-log", "--kb", str(FIXTURE_KB),
                  stdin="harga cabai hari ini\n").returncode == 0
    assert not (state_dir / "assistant" / "unanswered.jsonl").exists()
    result = _posko("ask", "--report", "--kb", str(FIXTURE_KB))
    assert "Belum ada pertanyaan" in result.stdout


def test_usage_errors(state_dir: Path) -> None:
    result = _posko("ask", "--kb", str(FIXTURE_KB))
    assert result.returncode != 0 and "give a question" in result.stderr
    bad = _posko("ask", "--lang", "fr", "halo")
    assert bad.returncode != 0 and "fr" in bad.stderr


def test_broken_kb_is_one_clear_line(state_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "sapaan").mkdir()
    (tmp_path / "sapaan" / "x.yaml").write_text("id: x\n", encoding="utf-8")
    result = _posko("ask", "--kb", str(tmp_path), "halo")
    assert result.returncode == 1
    assert "sapaan/x.yaml: topic: is required" in result.stderr


def test_explain_prints_scores(state_dir: Path) -> None:
    result = _posko("ask", "--explain", "--kb", str(FIXTURE_KB), "harga tiket kereta")
    assert result.returncode == 0, result.stderr
    assert "normalised:  harga tiket kereta" in result.stdout
    assert "decision:    fallback" in result.stdout
    assert "heads:       alarm " in result.stdout and " wary " in result.stdout
    assert not (state_dir / "assistant" / "unanswered.jsonl").exists()


@pytest.mark.timeout(240)  # the dev set holds 3,000 questions since the sixth round
def test_json_mode_matches_the_api_over_the_whole_dev_set(state_dir: Path, shipped_brain) -> None:
    """One process answers hundreds of lines, each exactly as the Python API does."""
    from tests.assistant.evaluation import load_devset

    questions = [item.q.replace("\n", " ") for item in load_devset()]
    result = _posko("ask", "--json", "--no-log", stdin="\n".join(questions) + "\n", timeout=200)
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(questions) >= 300
    for question, obj in zip(questions, out, strict=True):
        reply = shipped_brain.ask(question)
        assert (obj["action"], obj["entry"]) == (reply.action, reply.entry), question
