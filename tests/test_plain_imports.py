"""Plain imports everywhere: an import inside a function says why it is not at the top.

Issue "One home per concept", item 5: lazy imports hide real dependencies and can turn a
genuine ImportError into something else. An import inside a function body is allowed only
with a one-line reason in a `# lazy:` comment, on the import line or on the comment line
directly above the import (or above the run of imports it starts), e.g. a heavy library
(PyAudio, Vosk, faster-whisper) that only one command needs, or a package of an extra that
a role does not install.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("posko", "assistant", "gateway", "models", "firmware", "kiosk_ui", "hub")
MARK = "# lazy:"


def _function_imports(tree: ast.AST):
    """(import node) for every import inside a function body (nested ones included)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    yield inner


def _has_reason(lines: list[str], lineno: int) -> bool:
    """The import at lineno (1-based) or the run of imports above it carries `# lazy:`."""
    i = lineno - 1
    if MARK in lines[i]:
        return True
    j = i - 1
    while j >= 0:
        text = lines[j].strip()
        if text.startswith(MARK):
            return len(text) > len(MARK) + 3  # a reason, not just the mark
        if text.startswith(("import ", "from ")) or (text.startswith("#") and MARK not in text) \
                or text.endswith(",") or text in (")", ""):
            if text == "":
                return False
            j -= 1
            continue
        return False
    return False


def lazy_imports_without_reason(root: Path = ROOT) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            seen = set()
            for node in _function_imports(ast.parse(source)):
                if node.lineno in seen:
                    continue
                seen.add(node.lineno)
                if not _has_reason(lines, node.lineno):
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


def test_every_import_inside_a_function_says_why() -> None:
    found = lazy_imports_without_reason()
    assert not found, ("imports inside functions without a '# lazy: reason' comment "
                       "(move them to the top of the module, or say why they must wait):\n"
                       + "\n".join(found))


def test_the_check_finds_an_unexplained_lazy_import(tmp_path: Path) -> None:
    pkg = tmp_path / "posko"
    pkg.mkdir()
    (pkg / "a.py").write_text(
        "import os\n\n"
        "def f():\n    import json\n    return json\n\n"
        "def g():\n    # lazy: PyAudio loads PortAudio and probes every sound card\n"
        "    import pyaudio\n    import wave\n    return pyaudio, wave\n\n"
        "def h():\n    import numpy  # lazy: numpy only for the resampler\n    return numpy\n\n"
        "def k():\n    # lazy:\n    import sqlite3\n    return sqlite3\n",
        encoding="utf-8")
    found = lazy_imports_without_reason(tmp_path)
    assert [line.split(": ", 1)[1] for line in found] == ["import json", "import sqlite3"]
