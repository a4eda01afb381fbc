"""Install extras per role: a PTT-only unit (`.[unit]`) gets no database or web server.

The resolution is pip's own (`pip install --dry-run --report`), and a real venv built from
`.[unit]` shows what a PTT-only Pi can run: `posko unit` and `posko ptt` work, `posko hub`
names the package it lacks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a PTT-only unit must not carry: database, migrations, web servers and forms, password
# hashing, image decoding, the assistant's matcher, speech models' runtimes.
NOT_ON_A_PTT_UNIT = {"psycopg", "psycopg-binary", "alembic", "gunicorn", "argon2-cffi",
                     "flask-wtf", "sqlalchemy", "flask", "flask-login", "pillow", "vosk",
                     "piper-tts", "onnxruntime"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout: pip builds in the source folder and would leave a posko.egg-info
    in the checkout that shadows the editable install's entry points."""
    from tests.install.rootfs import copy_source

    folder = tmp_path_factory.mktemp("src") / "posko"
    copy_source(folder)
    return folder


def resolve(source: Path, extras: str) -> set[str]:
    """The distributions pip would install for `.[extras]` into an empty environment."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", "-", f"{source}[{extras}]"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    return {_canonical(item["metadata"]["name"]) for item in report["install"]}


@pytest.mark.slow
def test_a_ptt_only_unit_resolves_no_database_or_web_server_packages(source: Path) -> None:
    unit = resolve(source, "unit")
    assert {"posko", "paho-mqtt", "opuslib", "gpiozero", "pyaudio"} <= unit
    assert not unit & NOT_ON_A_PTT_UNIT, sorted(unit & NOT_ON_A_PTT_UNIT)


@pytest.mark.slow
def test_hub_and_kiosk_roles_resolve_what_they_serve_with(source: Path) -> None:
    hub = resolve(source, "hub")
    assert {"sqlalchemy", "alembic", "gunicorn", "argon2-cffi", "flask-wtf", "psycopg"} <= hub
    assert not hub & {"pyaudio", "gpiozero", "vosk", "piper-tts"}  # no audio stack on the server
    kiosk = resolve(source, "kiosk")
    assert {"flask", "gunicorn", "vosk", "piper-tts", "gpiozero", "rapidfuzz"} <= kiosk
    assert not kiosk & {"sqlalchemy", "alembic", "psycopg", "argon2-cffi", "flask-wtf"}


@pytest.fixture(scope="module")
def unit_venv(tmp_path_factory: pytest.TempPathFactory, source: Path) -> Path:
    """A real venv with `.[unit]` only (pip's cache makes a second build quick)."""
    venv = tmp_path_factory.mktemp("unit-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                             f"{source}[unit]"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return venv


def _posko(venv: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    # Run outside the source tree so that nothing imports the checkout instead of the venv.
    return subprocess.run([str(venv / "bin" / "posko"), *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=venv)


@pytest.mark.slow
def test_the_unit_venv_runs_the_unit_and_ptt_and_names_what_the_hub_lacks(unit_venv: Path) -> None:
    frozen = subprocess.run([str(unit_venv / "bin" / "python"), "-m", "pip", "freeze"],
                            capture_output=True, text=True, check=True).stdout
    installed = {_canonical(line.split("==")[0]) for line in frozen.splitlines() if "==" in line}
    assert not installed & NOT_ON_A_PTT_UNIT, sorted(installed & NOT_ON_A_PTT_UNIT)
    for command in ("unit", "ptt"):
        result = _posko(unit_venv, command, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage: posko " + command in result.stdout
    assert _posko(unit_venv, "--help").returncode == 0  # the help lists all without importing
    for args in (["hub"], ["hub", "serve", "--help"]):
        result = _posko(unit_venv, *args)
        assert result.returncode == 1
        assert "hub needs the Python package" in result.stderr and "./setup.sh hub" in result.stderr
