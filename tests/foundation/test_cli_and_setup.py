"""The posko command and the installer's contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import posko
from posko.cli import LAZY_COMMANDS, cli

ROOT = Path(__file__).resolve().parents[2]


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert posko.__version__ in result.output


def test_every_lazy_command_is_listed_in_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in LAZY_COMMANDS:
        assert name in result.output


def test_setup_refuses_unknown_role() -> None:
    result = subprocess.run(["bash", str(ROOT / "setup.sh"), "bogus"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "unknown role 'bogus'" in result.stderr


def test_setup_script_is_strict_and_valid_bash() -> None:
    text = (ROOT / "setup.sh").read_text()
    assert "set -euo pipefail" in text
    assert subprocess.run(["bash", "-n", str(ROOT / "setup.sh")]).returncode == 0


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./setup.sh dev && .venv/bin/posko up" in readme
    assert "./setup.sh dev && .venv/bin/pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./setup.sh dev" in ci and ".venv/bin/pytest" in ci


def test_python_m_posko_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "posko", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and posko.__version__ in result.stdout
