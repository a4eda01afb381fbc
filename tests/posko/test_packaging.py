"""A regular (non-editable) install carries the data files: KB entries, templates, migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_every_data_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("posko-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [p.relative_to(ROOT).as_posix() for pattern in
              ("assistant/kb/**/*.yaml", "hub/templates/**/*.html",
               "kiosk_ui/templates/**/*.html", "hub/migrations/versions/*.py")
              for p in ROOT.glob(pattern)]
    assert len(wanted) > 100
    missing = [w for w in wanted if w not in names]
    assert not missing, f"not in the wheel: {missing[:10]}"
