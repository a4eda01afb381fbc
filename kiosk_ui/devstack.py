"""The kiosk's part of `posko up`: enrol the simulated unit with the dev hub, then serve the UI.

Enrolment runs the same commands an admin and a technician would: `posko hub units add`
(or `rotate` when the unit exists but its token was lost) prints a one-time code, and
`posko enroll --hub URL --code CODE` stores the token. When this build has no hub, or the
hub is not running, the UI is still served and the reason is printed: reports then wait
in the outbox.
"""

from __future__ import annotations

import os
import subprocess
import time

import click
import requests

from posko.broker import dev_client_env
from posko.enroll import read_token
from posko.procs import ProcessSpec, python_module_argv


def _env(settings) -> dict[str, str]:
    # The kiosk app logs in as its own user, not as the unit: the broker's ACL lets it send
    # the unit commands and alerts but never speak as the unit's assistant.
    return {"POSKO_POSKO_STATE_DIR": str(settings.state_dir), **dev_client_env(settings, "kiosk")}


def _run(settings, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(_env(settings))
    return subprocess.run(python_module_argv(*args), env=env, capture_output=True, text=True, timeout=60)


def enrol_with_dev_hub(settings) -> str:
    """Enrol the unit if it has no token yet; returns one line saying what happened."""
    unit = settings.posko.unit_id
    if read_token(settings):
        return f"kiosk: unit {unit} already enrolled"
    hub_url = settings.kiosk.hub_url
    # The hub's port opens before its workers answer (gevent workers boot for a few seconds).
    deadline = time.monotonic() + 30.0
    while True:
        try:
            requests.get(hub_url.rstrip("/") + "/api/v1/openapi.json", timeout=3)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                return f"kiosk: not enrolled (no hub answering at {hub_url})"
            time.sleep(0.5)
    added = _run(settings, "hub", "units", "add", unit, "--name", settings.posko.posko_name)
    if added.returncode != 0:  # the unit exists (token lost): a fresh code replaces the old token
        added = _run(settings, "hub", "units", "rotate", unit)
    lines = added.stdout.strip().splitlines()
    if added.returncode != 0 or not lines:
        return f"kiosk: not enrolled (hub refused: {(added.stderr or added.stdout).strip()[-200:]})"
    enrolled = _run(settings, "enroll", "--hub", hub_url, "--code", lines[-1].strip())
    if enrolled.returncode != 0:
        return f"kiosk: not enrolled ({(enrolled.stderr or enrolled.stdout).strip()[-200:]})"
    return f"kiosk: unit {unit} enrolled with the hub at {hub_url}"


def dev_services(settings) -> list[ProcessSpec]:
    click.echo(enrol_with_dev_hub(settings))
    host = settings.kiosk.bind
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{shown}:{settings.kiosk.port}/"
    return [ProcessSpec(
        name="kiosk-ui",
        argv=python_module_argv("kiosk-ui"),
        env=_env(settings),
        ready_port=settings.kiosk.port, ready_host=shown,
        urls=[("kiosk", f"{url}  (touchscreen of unit {settings.posko.unit_id}; open it at 800x480)")],
        ready_timeout_s=30.0,
    )]
