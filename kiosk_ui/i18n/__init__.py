"""Screen texts from `id.yaml` (default) and `en.yaml`; nothing residents read lives in Python.

`Texts(lang)` looks keys up by dotted path ("lapor.title") and formats `{name}` fields.
A missing key raises KeyError: the test suite checks both files have the same keys.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

LANGS = ("id", "en")
_DIR = Path(__file__).resolve().parent


@cache
def catalogue(lang: str) -> dict[str, Any]:
    if lang not in LANGS:
        raise KeyError(f"unknown language {lang!r}")
    with open(_DIR / f"{lang}.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def flat_keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            keys |= flat_keys(value, path + ".")
        else:
            keys.add(path)
    return keys


class Texts:
    """Texts of one language, used as `t("lapor.title")` in templates."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else LANGS[0]
        self.tree = catalogue(self.lang)

    def get(self, key: str) -> Any:
        node: Any = self.tree
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"no text {key!r} in {self.lang}.yaml")
            node = node[part]
        return node

    def __call__(self, key: str, **fields: Any) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise KeyError(f"text {key!r} in {self.lang}.yaml is not a string")
        return value.format(**fields) if fields else value
