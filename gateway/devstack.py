"""`posko up` runs the floor arbiter and recorder against the dev broker."""

from __future__ import annotations

from posko.broker import dev_client_env
from posko.config import Settings
from posko.procs import ProcessSpec, python_module_argv


def dev_services(settings: Settings) -> list[ProcessSpec]:
    """One child: `posko arbiter` (floor control for every group + the recorder)."""
    env = {**dev_client_env(settings, "arbiter"), "POSKO_POSKO_STATE_DIR": str(settings.state_dir)}
    return [ProcessSpec(name="arbiter", argv=python_module_argv("arbiter"), env=env)]
