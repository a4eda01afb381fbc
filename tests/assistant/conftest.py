"""Fixtures of the assistant tests: brains are built once per session (they are read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import Brain, load_brain

FIXTURE_KB = Path(__file__).parent / "fixtures" / "kb"


@pytest.fixture(scope="session")
def fixture_brain() -> Brain:
    """A brain over the small fixture KB: unit tests do not depend on the real KB's content."""
    return load_brain(FIXTURE_KB)


@pytest.fixture(scope="session")
def shipped_brain() -> Brain:
    """A brain over the knowledge base that ships with Posko."""
    return load_brain()
