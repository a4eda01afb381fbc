"""`posko enroll --hub URL --code CODE`: get this unit's hub token and keep it (mode 0600).

`read_token(settings)` gives the token to the kiosk's sync worker (None before enrolment).
When the hub manages broker logins its answer also carries the unit's login at the central
broker; it is kept beside the token (`<state>/unit/broker-login.json`, 0600), where root's
posko-bridge-login.path picks it up and writes it into the bridge's configuration
(firmware/bridge_conf.py). `firmware/broker_login.py` renews it after a rotation.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click

from posko.config import Settings, load_settings
from posko.errors import PoskoError
from posko.hubclient import HubClient, HubUnreachable


class EnrolError(PoskoError, RuntimeError):
    """The hub refused the enrolment or could not be reached."""


def token_path(settings: Settings) -> Path:
    return settings.state_dir / "unit" / "hub-token"


def read_token(settings: Settings) -> str | None:
    """The unit's hub token, or None when the unit has not enrolled yet."""
    try:
        token = token_path(settings).read_text().strip()
    except FileNotFoundError:
        return None
    return token or None


def write_token(settings: Settings, token: str) -> Path:
    """Store the token atomically with mode 0600."""
    return _write_private(token_path(settings), token + "\n")


def _write_private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


# What firmware/bridge_conf.py accepts too: a unit id, and a password of URL-safe characters.
_USER = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")


def broker_login_path(settings: Settings) -> Path:
    return settings.state_dir / "unit" / "broker-login.json"


def read_broker_login(settings: Settings) -> dict[str, str] | None:
    """The broker login the hub gave this unit ({user, password, login}), or None."""
    try:
        data = json.loads(broker_login_path(settings).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) and all(isinstance(data.get(k), str) for k in
                                                  ("user", "password", "login")) else None


def write_broker_login(settings: Settings, login: object, unit: str) -> Path:
    """Keep the hub's broker login for this unit (0600, atomic). EnrolError when the hub's
    answer is not a login for `unit`."""
    if not (isinstance(login, dict) and login.get("user") == unit
            and all(isinstance(login.get(k), str) for k in ("password", "login"))
            and _USER.fullmatch(unit) and _SECRET.fullmatch(login["password"])
            and _USER.fullmatch(login["login"])):
        raise EnrolError(f"the hub's broker login is not one for unit {unit}")
    body = {"user": unit, "password": login["password"], "login": login["login"]}
    return _write_private(broker_login_path(settings), json.dumps(body) + "\n")


def enrol(settings: Settings, hub_url: str, code: str, unit_id: str | None = None,
          timeout_s: float = 15.0) -> Path:
    """Call POST /api/v1/enroll (through the units' one hub client) and store the token;
    EnrolError on any failure, a captive portal's page included."""
    unit = unit_id or settings.posko.unit_id
    client = HubClient(hub_url, lambda: None, timeout_s=timeout_s, ca_file=settings.kiosk.hub_ca_file)
    try:
        answer = client.enrol(unit, code.strip())
    except HubUnreachable as exc:
        raise EnrolError(f"cannot reach the hub at {hub_url}: {exc}") from None
    if not answer.from_hub:
        raise EnrolError(f"{hub_url} did not answer as a Posko hub (HTTP {answer.status}): "
                         "a captive portal or a wrong address?")
    if answer.status != 200:
        raise EnrolError(f"the hub refused enrolment of {unit} (HTTP {answer.status}): "
                         f"{answer.data.get('message', '')}")
    token = answer.data.get("token")
    if not isinstance(token, str) or not token:
        raise EnrolError("the hub answered without a token")
    path = write_token(settings, token)
    if "broker" in answer.data:
        write_broker_login(settings, answer.data["broker"], unit)
    return path


@click.command("enroll")
@click.option("--hub", "hub_url", default=None, help="Hub base URL (default: [kiosk] hub_url).")
@click.option("--code", required=True, help="The one-time code from `posko hub units add`.")
@click.option("--unit", "unit_id", default=None, help="Unit id (default: [posko] unit_id).")
def enroll(hub_url: str | None, code: str, unit_id: str | None) -> None:
    """Enrol this unit with the hub using a one-time code."""
    settings = load_settings()
    path = enrol(settings, hub_url or settings.kiosk.hub_url, code, unit_id)
    click.echo(f"enrolled {unit_id or settings.posko.unit_id}; token kept in {path} (mode 0600)")
    if read_broker_login(settings):
        click.echo(f"broker login kept in {broker_login_path(settings)} (mode 0600)")
