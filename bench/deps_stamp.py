"""The stamp of the wheelhouse bench/install_root.sh builds: the SHA-256 of what pyproject.toml
says Posko needs (build requirements, dependencies, every extra), not of the whole file, so a
change to a tool's settings there (pytest's options, ruff's rules) does not make the install
tests wait for a new wheelhouse.

    python3 bench/deps_stamp.py [pyproject.toml]      # prints the stamp
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path


def stamp(pyproject: Path) -> str:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project", {})
    needs = {"build": data.get("build-system", {}).get("requires", []),
             "python": project.get("requires-python", ""),
             "dependencies": project.get("dependencies", []),
             "extras": project.get("optional-dependencies", {})}
    return hashlib.sha256(json.dumps(needs, sort_keys=True).encode()).hexdigest()


if __name__ == "__main__":
    print(stamp(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")))
