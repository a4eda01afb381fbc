"""The architecture holds: the import-linter contracts of pyproject.toml ([tool.importlinter]).

Imports run from the edges (hub, kiosk_ui, firmware) down to what they share (assistant,
gateway, models) and then to posko; siblings on one layer never import each other; audio
and hardware libraries load only inside firmware; the hub never imports the Opus codec.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout and result.stdout.count("KEPT") == 3
