"""`posko logs [PART]`: the journal of Posko's services, filtered by part (over SSH)."""

from __future__ import annotations

import os
import shutil

import click

# part -> the systemd units whose journal it shows
PARTS = {
    "unit": ["posko-unit"],
    "kiosk": ["posko-kiosk-ui", "posko-kiosk-browser"],
    "hub": ["posko-hub", "posko-hub-streams", "posko-hub-ingest"],
    "arbiter": ["posko-arbiter"],
    "update": ["posko-unit", "posko-update-restart"],
    "mqtt": ["mosquitto"],
    "proxy": ["nginx"],
}
ALL = sorted({u for units in PARTS.values() for u in units})


def journal_argv(part: str | None, follow: bool = False, lines: int = 100, since: str = "",
                 errors_only: bool = False) -> list[str]:
    """The journalctl command for a part (None: every Posko service). KeyError on a bad part."""
    units = PARTS[part] if part else ALL
    argv = ["journalctl", "--no-pager", "-o", "short-iso", "-n", str(lines)]
    for unit in units:
        argv += ["-u", f"{unit}.service"]
    if part == "update":
        argv += ["--grep", "update"]
    if since:
        argv += ["--since", since]
    if errors_only:
        argv += ["-p", "warning"]
    if follow:
        argv.append("-f")
    return argv


@click.command("logs")
@click.argument("part", required=False, type=click.Choice(sorted(PARTS)))
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--lines", type=int, default=100, show_default=True, help="How many lines.")
@click.option("--since", default="", help="journalctl time, e.g. '1 hour ago' or '2026-12-01 02:00'.")
@click.option("--errors", is_flag=True, help="Warnings and errors only.")
def logs(part: str | None, follow: bool, lines: int, since: str, errors: bool) -> None:
    """The journal of Posko's services (all, or one PART)."""
    if shutil.which("journalctl") is None:
        raise click.ClickException("journalctl not found: logs are in the journal on an installed "
                                   "machine; `posko up` writes them under var/logs/")
    argv = journal_argv(part, follow, lines, since, errors)
    os.execvp(argv[0], argv)
