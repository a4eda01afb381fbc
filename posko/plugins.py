"""The parts of Posko that plug into `posko` (its subcommands, `posko up`'s services).

Each package registers its parts as entry points in `pyproject.toml` (groups
`posko.commands` and `posko.dev_services`), so the shared `posko` package never imports
the edges (hub, kiosk_ui, firmware) that sit above it. A part is imported only when it is
used: `posko config show` on a hub never loads audio libraries.

A part whose third-party packages this machine lacks (a PTT-only unit has no Flask) says
which package is missing and how to install it; an ImportError inside Posko's own code is
a bug and is raised as it is.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from posko.errors import PoskoError

POSKO_PACKAGES = frozenset({"posko", "assistant", "gateway", "models", "firmware", "kiosk_ui", "hub"})
COMMANDS = "posko.commands"
DEV_SERVICES = "posko.dev_services"


class MissingPackage(PoskoError, ImportError):
    """A part of Posko needs a package that is not installed on this machine."""


def registered(group: str) -> dict[str, EntryPoint]:
    """name -> entry point of every part registered in group."""
    return {ep.name: ep for ep in entry_points(group=group)}


def load(ep: EntryPoint, role_hint: str = ""):
    """Import the part; MissingPackage when a third-party package it needs is absent."""
    try:
        return ep.load()
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if not top or top in POSKO_PACKAGES:
            raise
        hint = f" (./setup.sh {role_hint} installs it)" if role_hint else ""
        raise MissingPackage(f"{ep.name} needs the Python package '{top}', which is not "
                             f"installed on this machine{hint}") from exc
