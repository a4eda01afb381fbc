"""`posko up` runs the floor arbiter and recorder against the dev broker."""

from __future__ import annotations

from posko.config import Settings
from posko.procs import ProcessSpec, python_module_argv


def dev_services(settings: Settings) -> list[ProcessSpec]:
    """One child: `posko arbiter` (floor control for every group + the recorder)."""
    return [ProcessSpec(name="arbiter", argv=python_module_argv("arbiter"))]
