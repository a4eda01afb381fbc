"""`./setup.sh ptt | hub | kiosk` in a throwaway Debian 12 root (tests/install/rootfs.py).

Each role is installed for real (Debian packages already in the cached root, Python packages
from its wheelhouse), checked with `systemd-analyze verify`, run a second time (changes
nothing; posko.toml kept), and its services are started the way their units say (user,
groups, environment, working directory, umask) and shown answering. No systemd runs as PID 1
here: docs/install.md says what that leaves untested.
"""

from __future__ import annotations

import re
import shlex

import pytest

from tests.install.rootfs import SRC_IN_ROOT, WHEELS_IN_ROOT, ThrowawayRoot

pytestmark = pytest.mark.slow
SETUP = f"{SRC_IN_ROOT}/setup.sh"


class UnitFile:
    """A systemd unit file: section -> key -> every value given (systemd repeats keys)."""

    def __init__(self, text: str) -> None:
        self.sections: dict[str, dict[str, list[str]]] = {}
        section = ""
        # Continuation lines (trailing backslash) are one value for systemd.
        for line in re.sub(r"\\\n\s*", " ", text).splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            self.sections.setdefault(section, {}).setdefault(key.strip(), []).append(value.strip())

    def __getitem__(self, section: str) -> dict[str, str]:
        """The section with the last value of each key (what systemd uses for single keys)."""
        return {k: v[-1] for k, v in self.sections.get(section, {}).items()}

    def all(self, section: str, key: str) -> list[str]:
        return self.sections.get(section, {}).get(key, [])


def unit_file(root: ThrowawayRoot, name: str) -> UnitFile:
    return UnitFile(root.run(f"cat /etc/systemd/system/{name}.service").stdout)


def start_as_unit_says(unit: UnitFile, log: str) -> str:
    """A bash line that starts the unit's ExecStart in the background like systemd would.

    User, Group, SupplementaryGroups (via the user's groups), Environment, EnvironmentFile,
    WorkingDirectory, UMask, StateDirectory (made 0700 as systemd does).
    """
    s = unit["Service"]
    env = " ".join(shlex.quote(e) for line in unit.all("Service", "Environment") for e in shlex.split(line))
    load_env = "".join(f"set -a; . {f.lstrip('-')}; set +a; " for f in unit.all("Service", "EnvironmentFile"))
    state = s.get("StateDirectory", "")
    make_state = (f"install -d -m {s.get('StateDirectoryMode', '0755')} -o {s['User']} "
                  f"-g {s.get('Group', s['User'])} /var/lib/{state}; ") if state else ""
    argv = s["ExecStart"].lstrip("-@+!")
    user = f"setpriv --reuid={s['User']} --regid={s.get('Group', s['User'])} --init-groups env {env}"
    pre = "".join(  # in order; "-" in front: its failure is ignored, as systemd does
        f"{user} {line.lstrip('-@+!')}{' || true' if line.startswith('-') else ''} && "
        for line in unit.all("Service", "ExecStartPre"))
    return (f"{make_state}( cd {s['WorkingDirectory']} && umask {s.get('UMask', '0022')} && "
            f"{load_env}{pre}exec {user} {argv} ) >{log} 2>&1 &\n")


# Debian's mosquitto.service, as its ExecStartPre/ExecStart lines say.
START_MOSQUITTO = ("mkdir -m 740 -p /run/mosquitto /var/log/mosquitto; "
                   "chown mosquitto /run/mosquitto /var/log/mosquitto; "
                   "mosquitto -d -c /etc/mosquitto/mosquitto.conf; sleep 0.5\n")


def verify_units(root: ThrowawayRoot, names: list[str]) -> None:
    """systemd-analyze verify of the installed units: no warning, no error, exit 0."""
    units = " ".join(f"/etc/systemd/system/{n if '.' in n else n + '.service'}" for n in names)
    result = root.run(f"SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no {units}",
                      check=False)
    said = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not said, said


def test_dry_run_prints_every_change_and_makes_none(throwaway_root: ThrowawayRoot) -> None:
    out = throwaway_root.run(f"{SETUP} ptt --dry-run --unit-id ptt-01 --hub https://hub.example").stdout
    assert "would add system user posko" in out
    assert "would create the venv /opt/posko/releases/" in out
    assert "would install /etc/posko/posko.toml" in out
    assert "would install /etc/systemd/system/posko-unit.service" in out
    assert "would enable posko-unit" in out
    changed = {p.relative_to(throwaway_root.upper).as_posix() for p in throwaway_root.upper.rglob("*")}
    assert not [p for p in changed if p.startswith(("etc/posko", "opt/posko", "var/lib/posko",
                                                   "etc/systemd/system/posko"))], sorted(changed)
    assert "posko:" not in throwaway_root.run("cat /etc/passwd").stdout


def test_ptt_role_installs_runs_and_a_second_run_changes_nothing(throwaway_root: ThrowawayRoot) -> None:
    root = throwaway_root
    first = root.run(f"{SETUP} ptt --unit-id ptt-01 --posko-name 'Posko Uji' "
                     f"--hub https://hub.example --wheelhouse {WHEELS_IN_ROOT}").stdout
    assert "done: role ptt installed" in first
    facts = root.run(
        "id posko; stat -c '%a %U' /var/lib/posko /etc/posko/posko.toml; readlink /opt/posko/current;"
        " /opt/posko/current/bin/python -m pip freeze; cat /etc/posko/posko.toml").stdout
    assert re.search(r"groups=.*audio.*gpio|groups=.*gpio.*audio", facts)
    assert "700 posko" in facts and "640 root" in facts
    assert re.search(r"^releases/\S+$", facts, re.M)
    frozen = {line.split("==")[0].lower() for line in facts.splitlines() if "==" in line}
    assert not frozen & {"flask", "sqlalchemy", "alembic", "gunicorn", "psycopg", "argon2-cffi"}
    assert 'unit_id = "ptt-01"' in facts and "assistant_enabled = false" in facts
    verify_units(root, ["posko-unit", "posko-update-restart.service", "posko-update-restart.path",
                        "posko-bridge-login.service", "posko-bridge-login.path"])
    bridge = root.run("stat -c '%a %U:%G' /etc/mosquitto/conf.d/posko-unit.conf;"
                      " grep -c '^remote_password' /etc/mosquitto/conf.d/posko-unit.conf || true;"
                      " systemctl is-enabled posko-bridge-login.path;"
                      " python3 -I /usr/local/lib/posko/bridge_conf.py apply /var/lib/posko/unit/broker-login.json"
                      " /etc/mosquitto/conf.d/posko-unit.conf").stdout
    # Not enrolled yet: no password in the bridge, and the root-side tool has nothing to do.
    assert bridge.splitlines()[:3] == ["640 root:mosquitto", "0", "enabled"], bridge
    assert "nothing to do" in bridge
    owners = root.run("stat -c '%U %n' /opt/posko /opt/posko/releases /opt/posko/releases/*/bin/python"
                      " /usr/local/lib/posko/update_guard.py; systemctl is-enabled posko-update-restart.path").stdout
    assert "posko /opt/posko\n" in owners and "posko /opt/posko/releases\n" in owners
    assert re.search(r"^root /opt/posko/releases/.*/bin/python$", owners, re.M)  # setup.sh's release is root's
    assert "root /usr/local/lib/posko/update_guard.py" in owners and owners.strip().endswith("enabled")

    # A second run: the maintainer's edit of posko.toml survives, nothing else changes.
    root.run("echo '# edited by hand' >> /etc/posko/posko.toml")
    second = root.run(f"{SETUP} ptt --unit-id ptt-01 --wheelhouse {WHEELS_IN_ROOT}").stdout
    assert "nothing to change" in second, second
    assert "# edited by hand" in root.run("cat /etc/posko/posko.toml").stdout

    # Started as its unit says, the agent reaches the local broker and publishes its heartbeat.
    unit = unit_file(root, "posko-unit")
    assert unit["Service"]["User"] == "posko" and unit["Service"]["WatchdogSec"]
    out = root.run(
        START_MOSQUITTO
        + start_as_unit_says(unit, "/tmp/unit.log")
        + "pw=$(sed -n 's/^password = \"\\(.*\\)\"/\\1/p' /etc/posko/posko.toml);"
        " mosquitto_sub -h 127.0.0.1 -u ptt-01 -P \"$pw\" -t 'posko/v1/unit/+/status' -C 1 -W 40 -v"
        " || { cat /tmp/unit.log; exit 1; }; ps -o user=,args= -C posko | head -3; cat /tmp/unit.log",
        timeout=120).stdout
    heartbeat = next(line for line in out.splitlines() if line.startswith("posko/v1/unit/ptt-01/status "))
    assert '"unit":"ptt-01"' in heartbeat.replace(" ", ""), heartbeat
    assert re.search(r"^posko\s", out, re.M), out
    assert "update guard: nothing to do (idle)" in out  # ExecStartPre ran with the system Python


def test_hub_role_serves_https_through_nginx(throwaway_root: ThrowawayRoot) -> None:
    root = throwaway_root
    out = root.run(f"{SETUP} hub --server-name hub.polres.example --wheelhouse {WHEELS_IN_ROOT}").stdout
    assert "done: role hub installed" in out
    names = ["posko-hub", "posko-hub-streams", "posko-hub-ingest", "posko-arbiter",
             "posko-broker-reload.service", "posko-broker-reload.path"]
    verify_units(root, names)
    files = root.run("stat -c '%a %U:%G %n' /etc/posko/broker-base.passwd /var/lib/posko-broker"
                     " /var/lib/posko-broker/units.passwd /var/lib/posko-broker/units.acl;"
                     " cut -d: -f1 /var/lib/posko-broker/units.passwd; grep '^broker_' /etc/posko/posko.toml;"
                     " systemctl is-enabled posko-broker-reload.path").stdout
    assert "640 root:posko /etc/posko/broker-base.passwd" in files
    assert "2750 posko:mosquitto /var/lib/posko-broker\n" in files
    assert "640 posko:mosquitto /var/lib/posko-broker/units.passwd" in files
    assert re.search(r"^hub\narbiter$", files, re.M) and files.strip().endswith("enabled"), files
    assert 'broker_password_file = "/var/lib/posko-broker/units.passwd"' in files
    hub, streams = unit_file(root, "posko-hub"), unit_file(root, "posko-hub-streams")
    script = (
        START_MOSQUITTO
        + start_as_unit_says(hub, "/tmp/hub.log")
        # posko-hub-streams is After=posko-hub (Type=notify: ready once it serves, its
        # ExecStartPre migration done); started together, the streams instance's start-up
        # writes raced the migration on a loaded machine and left it half done.
        + "for i in $(seq 90); do curl -fs -o /dev/null http://127.0.0.1:18080/masuk && break; sleep 1; done;\n"
        + start_as_unit_says(streams, "/tmp/streams.log")
        + start_as_unit_says(unit_file(root, "posko-arbiter"), "/tmp/arbiter.log")
        + "nginx -t 2>&1; nginx;"
        "for i in $(seq 60); do curl -fsk -o /dev/null https://127.0.0.1/masuk && break; sleep 1; done;"
        "curl -sk -D - -o /dev/null https://127.0.0.1/masuk --resolve hub.polres.example:443:127.0.0.1;"
        "curl -s -o /dev/null -w 'http:%{http_code} %{redirect_url}\\n' http://127.0.0.1/masuk;"
        "openssl x509 -in /etc/posko/tls/hub.crt -noout -subject; stat -c '%a %U:%G' /etc/posko/tls/hub.key;"
        "sleep 1; ps -o user=,args= -C posko -C mosquitto | sort | uniq | head;"
        # A unit enrols through nginx: the hub (user posko, its unit's sandbox paths) writes the
        # unit's login into the broker's password file; the reload posko-broker-reload.path
        # would do is done by hand (no systemd here), and the unit's login gets in on 8883.
        "code=$(setpriv --reuid=posko --regid=posko --init-groups env POSKO_CONFIG=/etc/posko/posko.toml"
        " /opt/posko/current/bin/posko hub units add kiosk-enrol | tail -1);"
        "curl -sk -H 'Content-Type: application/json' -d \"{\\\"unit\\\": \\\"kiosk-enrol\\\", \\\"code\\\": \\\"$code\\\"}\""
        " https://127.0.0.1/api/v1/enroll > /tmp/enrol.json;"
        "pw=$(python3 -c 'import json; print(json.load(open(\"/tmp/enrol.json\"))[\"broker\"][\"password\"])');"
        "stat -c 'managed %a %U:%G' /var/lib/posko-broker/units.passwd; grep -c '^kiosk-enrol:' /var/lib/posko-broker/units.passwd;"
        "kill -HUP $(cat /run/mosquitto/mosquitto.pid); sleep 0.5;"
        "mosquitto_pub -h 127.0.0.1 -p 8883 --cafile /etc/posko/tls/hub.crt -u kiosk-enrol -P \"$pw\""
        " -t posko/v1/alert/kiosk-enrol -m '{}' -q 1 && echo 'unit login: accepted';"
        "tail -n 5 /tmp/hub.log /tmp/arbiter.log"
    )
    out = root.run(script, timeout=240).stdout
    assert "syntax is ok" in out
    assert re.search(r"HTTP/\S+ 200", out), out
    assert "strict-transport-security: max-age=31536000" in out.lower()
    assert "http:301 https://127.0.0.1/masuk" in out
    assert "CN = hub.polres.example" in out and "640 root:posko-tls" in out
    assert re.search(r"^posko .*posko arbiter", out, re.M), out
    assert "mqtt 127.0.0.1:1883" in out and "not authori" not in out.lower(), out
    assert "managed 640 posko:mosquitto\n1\n" in out and "unit login: accepted" in out, out


def test_kiosk_role_installs_the_screen_and_serves_the_kiosk_app(throwaway_root: ThrowawayRoot) -> None:
    root = throwaway_root
    out = root.run(f"{SETUP} kiosk --unit-id kiosk-01 --hub http://127.0.0.1:18080 "
                   f"--posko-name 'Posko Alun-alun' --wheelhouse {WHEELS_IN_ROOT}", timeout=900).stdout
    assert "done: role kiosk installed" in out
    verify_units(root, ["posko-unit", "posko-kiosk-ui", "posko-kiosk-browser", "posko-update-restart.path"])
    browser = unit_file(root, "posko-kiosk-browser")["Service"]
    assert browser["User"] == "posko-screen" and browser["PAMName"] == "login"
    assert "--kiosk" in browser["ExecStart"] and "--render 9222" in browser["ExecStart"]
    facts = root.run("systemctl get-default; id posko-screen; getent passwd posko-screen;"
                     " ls /etc/systemd/system/getty@tty1.service.d 2>&1 || true;"
                     " /opt/posko/current/bin/python -m pip freeze | grep -ci -E '^(sqlalchemy|alembic|psycopg)' || true").stdout
    assert "graphical.target" in facts
    assert "/usr/sbin/nologin" in facts  # the screen user has no shell and no password
    assert "No such file" in facts  # no auto-login drop-in for a getty: only the kiosk user's session
    assert facts.strip().endswith("0")  # no database packages on a kiosk either
    ui = unit_file(root, "posko-kiosk-ui")
    served = root.run(
        START_MOSQUITTO + start_as_unit_says(ui, "/tmp/ui.log")
        + "for i in $(seq 60); do curl -fs -o /tmp/page.html http://127.0.0.1:18081/ && break; sleep 1; done;"
        " grep -c 'Posko Alun-alun' /tmp/page.html || { tail -20 /tmp/ui.log; exit 1; };"
        " ps -o user=,args= -C posko | sort -u | head -4", timeout=180).stdout
    assert re.search(r"^posko .*posko watch --http", served, re.M), served
    assert re.search(r"^posko .*posko kiosk-ui", served, re.M), served
