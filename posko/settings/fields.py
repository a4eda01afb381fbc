"""`setting()`: a dataclass field that carries its documentation and its constraints.

The loader in `posko.config` reads this metadata to coerce and validate values and to
print one precise line when a value is wrong.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def setting(
    default: Any,
    doc: str,
    *,
    unit: str | None = None,
    min: float | None = None,  # noqa: A002 - reads naturally at the call site
    max: float | None = None,  # noqa: A002
    choices: tuple[str, ...] | None = None,
    secret: bool = False,
) -> Any:
    """A settings field with its documentation, unit and limits."""
    meta = {
        "doc": doc,
        "unit": unit,
        "min": min,
        "max": max,
        "choices": choices,
        "secret": secret,
    }
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
