"""Put a unit's broker login into its Mosquitto bridge configuration (run as root).

The unit agent runs as `posko`, which may neither write Mosquitto's configuration nor restart
Mosquitto. It keeps the login the hub gave it in `/var/lib/posko/unit/broker-login.json`
(posko.enroll); systemd's posko-bridge-login.path sees that file change and starts
posko-bridge-login.service, which runs this file with the system Python (standard library
only, `python3 -I`, installed by setup.sh as /usr/local/lib/posko/bridge_conf.py):

    bridge_conf.py apply LOGIN_JSON BRIDGE_CONF [--restart]

It checks the login (its user must be the bridge's own unit id, `remote_clientid`; the
password only URL-safe characters, so nothing else can be slipped into Mosquitto's
configuration), rewrites `remote_username` / `remote_password` of the bridge in one rename
(mode 0640, group mosquitto when that group exists) and, with --restart, restarts the local
Mosquitto when something changed (`systemctl try-restart mosquitto.service`: a bridge's login
is read only when the broker starts; messages queued for the bridge are persisted across it),
and then reads the login file again: one kept during the restart is applied too (systemd does
not watch a path unit's files while the service it started runs).
setup.sh runs it too, right after enrolment.
"""

from __future__ import annotations

import grp
import json
import os
import re
import subprocess
import sys
from pathlib import Path

USER = re.compile(r"[A-Za-z0-9_-]{1,64}")
SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")
RESTART = ["systemctl", "try-restart", "mosquitto.service"]
ROUNDS = 5  # restarts at most in one run, when newer logins keep coming during the restarts


class BadLogin(ValueError):
    """The login file or the bridge configuration is not what this tool may act on."""


def parse_login(text: str) -> tuple[str, str]:
    """(user, password) from the login file's JSON; BadLogin when it is not a safe login."""
    try:
        data = json.loads(text)
    except ValueError:
        raise BadLogin("the login file is not JSON") from None
    user = data.get("user") if isinstance(data, dict) else None
    password = data.get("password") if isinstance(data, dict) else None
    if not isinstance(user, str) or not USER.fullmatch(user):
        raise BadLogin("user: must be a unit id (letters, digits, '-', '_')")
    if not isinstance(password, str) or not SECRET.fullmatch(password):
        raise BadLogin("password: must be 16-128 URL-safe characters")
    return user, password


def with_login(conf: str, user: str, password: str) -> str:
    """The bridge configuration `conf` with this login (pure). The login lines go just before
    the bridge's first `topic` line, as posko.broker.Bridge writes them, so applying the same
    login twice changes nothing. BadLogin when `conf` has no single bridge of unit `user`."""
    lines = conf.splitlines()
    starts = [i for i, line in enumerate(lines) if line.split()[:1] == ["connection"]]
    if len(starts) != 1:
        raise BadLogin(f"expected one bridge (connection) in the configuration, found {len(starts)}")
    head, block = lines[:starts[0]], lines[starts[0]:]
    ids = [line.split()[1] for line in block if line.split()[:1] == ["remote_clientid"] and len(line.split()) == 2]
    if ids != [user]:
        raise BadLogin(f"the bridge belongs to {ids[0] if ids else 'no unit'}, not to {user}")
    kept = [line for line in block if line.split()[:1] not in (["remote_username"], ["remote_password"])]
    at = next((i for i, line in enumerate(kept) if line.split()[:1] == ["topic"]), len(kept))
    kept[at:at] = [f"remote_username {user}", f"remote_password {password}"]
    return "\n".join(head + kept) + "\n"


def apply(login_file: Path, conf_file: Path) -> bool:
    """Write the login into the bridge configuration; True when the file changed.
    BadLogin for an unsafe login or a configuration of another unit; OSError from the files."""
    user, password = parse_login(login_file.read_text())
    old = conf_file.read_text()
    new = with_login(old, user, password)
    if new == old:
        return False
    tmp = conf_file.with_name(f".{conf_file.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(new)
        fh.flush()
        os.fsync(fh.fileno())
    if os.geteuid() == 0:
        try:
            os.chown(tmp, 0, grp.getgrnam("mosquitto").gr_gid)
        except KeyError:
            pass
    os.chmod(tmp, 0o640)
    os.replace(tmp, conf_file)
    return True


def _apply_reporting(login_file: Path, conf_file: Path, failure: str) -> bool | None:
    """apply(), with a failure printed as `failure: reason` and returned as None."""
    try:
        return apply(login_file, conf_file)
    except (BadLogin, OSError) as exc:
        print(f"bridge login: {failure}: {exc}", file=sys.stderr)
        return None


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or argv[0] != "apply" or (len(argv) == 4 and argv[3] != "--restart"):
        print("usage: bridge_conf.py apply LOGIN_JSON BRIDGE_CONF [--restart]", file=sys.stderr)
        return 2
    login_file, conf_file = Path(argv[1]), Path(argv[2])
    if not login_file.exists():
        print(f"bridge login: no {login_file} yet (the unit is not enrolled); nothing to do")
        return 0
    changed = _apply_reporting(login_file, conf_file, "not applied")
    if changed is None:
        return 1
    if not changed:
        print(f"bridge login: {conf_file} already has it")
        return 0
    print(f"bridge login: written to {conf_file}")
    if len(argv) < 4:
        return 0
    # systemd watches no file of a path unit while the service it started runs: a login the
    # agent keeps during this restart (seconds) would wake nothing. So look again after it.
    for _ in range(ROUNDS):
        done = subprocess.run(RESTART, check=False)
        print(f"bridge login: {' '.join(RESTART)} -> exit {done.returncode}")
        if done.returncode != 0:
            return 1
        changed = _apply_reporting(login_file, conf_file, "a newer login was not applied")
        if changed is None:
            return 1
        if not changed:
            return 0
        print(f"bridge login: a newer login was kept meanwhile; written to {conf_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
