"""The brain's data files (normalisation, safety, emergency, replies) and their strict loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from assistant.errors import KbError

DATA_DIR = Path(__file__).resolve().parent


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A YAML loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                              _mapping_without_duplicates)


def load_data(name: str, folder: Path | None = None) -> dict[str, Any]:
    """Load `<name>.yaml` from the data folder; raises KbError naming the file on any problem."""
    path = (folder or DATA_DIR) / f"{name}.yaml"
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506
    except (OSError, yaml.YAMLError) as exc:
        raise KbError([f"{path.name}: {str(exc).splitlines()[0]} {_where(exc)}"]) from exc
    if not isinstance(data, dict):
        raise KbError([f"{path.name}: must be a mapping at the top level"])
    return data


def _where(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"(line {mark.line + 1})" if mark is not None else ""
