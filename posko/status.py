"""`posko status`: one screen over SSH — what runs, since when, how often it restarted, versions.

Reads systemd (`systemctl show`), the release link (/opt/posko/current) and the updater's
state file; works on a unit with no screen and says so when systemd is not running (a
laptop). The parsing is pure and tested directly; `posko doctor` uses the same states.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from posko import __version__
from posko.config import Settings, load_settings

# Every unit file setup.sh may install, and what part of Posko it is.
POSKO_SERVICES = {
    "posko-unit": "unit agent", "posko-kiosk-ui": "kiosk app", "posko-kiosk-browser": "kiosk screen",
    "posko-hub": "hub", "posko-hub-streams": "hub live streams", "posko-hub-ingest": "hub MQTT ingest",
    "posko-arbiter": "arbiter + recorder", "mosquitto": "MQTT broker", "nginx": "reverse proxy",
}
SHOW_PROPERTIES = "Id,LoadState,ActiveState,SubState,ActiveEnterTimestamp,NRestarts,MainPID"
PREFIX = Path("/opt/posko")


@dataclass(frozen=True)
class ServiceState:
    name: str  # without ".service"
    load: str  # loaded | not-found | ...
    active: str  # active | activating | failed | inactive ...
    sub: str  # running | auto-restart | dead ...
    since: str  # systemd's timestamp text, "" when never started
    restarts: int
    pid: int

    @property
    def installed(self) -> bool:
        return self.load == "loaded"

    @property
    def healthy(self) -> bool:
        return self.active == "active" and self.sub in ("running", "exited")


def parse_show(text: str) -> list[ServiceState]:
    """`systemctl show -p ...` output for several units (blank-line separated blocks)."""
    out = []
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if not props.get("Id"):
            continue
        out.append(ServiceState(
            name=props["Id"].removesuffix(".service"), load=props.get("LoadState", ""),
            active=props.get("ActiveState", ""), sub=props.get("SubState", ""),
            since=props.get("ActiveEnterTimestamp", ""),
            restarts=int(props.get("NRestarts", "0") or 0), pid=int(props.get("MainPID", "0") or 0)))
    return out


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def service_states(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> list[ServiceState] | None:
    """The installed Posko services' states; None when systemd is not running here."""
    if run is subprocess.run and not systemd_running():
        return None
    result = run(["systemctl", "show", f"--property={SHOW_PROPERTIES}",
                  *[f"{name}.service" for name in POSKO_SERVICES]], capture_output=True, text=True, timeout=10)
    return [s for s in parse_show(result.stdout) if s.installed]


def running_release(prefix: Path = PREFIX) -> str:
    """The version /opt/posko/current points at ("" outside an installed machine)."""
    try:
        return Path(os.readlink(prefix / "current")).name
    except OSError:
        return ""


def update_state(settings: Settings) -> dict:
    """The updater's last state (firmware/updater.py), {} when it never ran."""
    try:
        return json.loads((settings.state_dir / "unit" / "update.json").read_text())
    except (OSError, ValueError):
        return {}


def render(settings: Settings, states: list[ServiceState] | None, release: str, update: dict) -> list[str]:
    """The lines of `posko status` (pure: everything it shows is passed in)."""
    lines = [f"posko {__version__}  unit {settings.posko.unit_id}  release {release or '(checkout, not installed)'}"]
    if update.get("state") and update["state"] not in ("idle",):
        lines.append(f"update   {update['state']} {update.get('version', '')} {update.get('reason', '')}".rstrip())
    if states is None:
        lines.append("systemd is not running here: no services to show (a laptop runs `posko up`)")
        return lines
    if not states:
        lines.append("no Posko services installed (./setup.sh kiosk|ptt|hub installs them)")
    for s in states:
        mark = "ok  " if s.healthy else "FAIL" if s.active == "failed" else "WARN"
        restarts = f", {s.restarts} restarts" if s.restarts else ""
        since = f" since {s.since}" if s.since else ""
        lines.append(f"[{mark}] {s.name:<20} {s.active}/{s.sub}{since}{restarts}  "
                     f"({POSKO_SERVICES.get(s.name, '')})")
    return lines


@click.command("status")
def status() -> None:
    """One screen: Posko's services (state, since when, restarts), release, update state."""
    settings = load_settings()
    for line in render(settings, service_states(), running_release(), update_state(settings)):
        click.echo(line)
