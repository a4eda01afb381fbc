"""Posko's units under a real systemd as PID 1: a KVM machine booting the Debian 12 root.

tests/install/vm.py boots the throwaway root (bench/install_root.sh, bench/vm_image.sh) in
qemu with KVM; `setup.sh ROLE` runs in it offline from the wheelhouse, and systemd itself
starts, watches, restarts and sandboxes the services. What is shown here: each role's
services active and answering; a hung service (SIGSTOP) restarted after WatchdogSec and a
killed one by Restart=always, each with a new main PID that answers; StateDirectory=,
UMask=0077, ProtectSystem=strict, ProtectHome=, PrivateTmp= and NoNewPrivileges= as systemd
applies them to the running process; the role back after a reboot of the machine; the path
units that stand between the posko user and root: on the hub, a unit's broker login written by
the hub reloads Mosquitto (posko-broker-reload.path), and wss through nginx reaches the broker;
on a unit, the login the agent keeps reaches the bridge (posko-bridge-login.path). The kiosk:
Chromium in cage on the machine's screen (a virtio GPU; QMP's screendump shows it) as the
kiosk user's own session on tty1, restarted when it dies and when it freezes.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.install.vm import SLOWER, SRC_IN_VM, VM, WHEELS_IN_VM, skip_reason

# A role's install runs in the first test's time (the machine is the module's fixture).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600 * SLOWER)]
HUB_UNITS = ["posko-hub", "posko-hub-streams", "posko-hub-ingest", "posko-arbiter"]
# The checkout is shared read-only; setuptools builds in the source folder, so setup.sh runs
# from a copy on the VM's disk.
COPY_SOURCE = f"rm -rf /usr/src/posko && cp -a {SRC_IN_VM} /usr/src/posko\n"
HUB_ANSWERS = ("for i in $(seq 90); do curl -fsk -o /dev/null https://127.0.0.1/masuk && break; sleep 1; done;"
               " curl -sk -o /dev/null -w 'https:%{http_code}\\n' https://127.0.0.1/masuk\n")


def booted(folder: Path, memory_mb: int, screen: bool = False) -> VM:
    reason = skip_reason()
    if reason:
        pytest.skip(f"no VM with systemd as PID 1 here: {reason}")
    vm = VM(folder, memory_mb=memory_mb, screen=screen)
    vm.start()
    return vm


def show(vm: VM, unit: str, *props: str) -> dict[str, str]:
    out = vm.run(f"systemctl show {unit} -p {','.join(props)}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_new_main_pid(vm: VM, unit: str, old_pid: str, timeout: float) -> dict[str, str]:
    """The unit's properties once it runs again (active) under a main PID other than old_pid."""
    deadline = time.monotonic() + timeout * SLOWER
    while True:
        props = show(vm, unit, "MainPID", "NRestarts", "ActiveState", "SubState")
        if props["ActiveState"] == "active" and props["MainPID"] not in ("0", old_pid):
            return props
        if time.monotonic() > deadline:
            raise AssertionError(f"{unit} not back in {timeout:.0f} s: {props}\n"
                                 + vm.run(f"journalctl -b -u {unit} --no-pager | tail -20", check=False).stdout)
        time.sleep(1)


def journal(vm: VM, units: list[str]) -> str:
    """The boot's journal of these units and Mosquitto (what a failed start said)."""
    names = " ".join(f"-u {u}" for u in [*units, "mosquitto"])
    return "\n--- journal\n" + vm.run(f"journalctl -b {names} --no-pager -o short-monotonic | tail -120",
                                       check=False).stdout


@pytest.fixture(scope="module")
def hub_vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VM]:
    vm = booted(tmp_path_factory.mktemp("hub-vm"), memory_mb=2048)
    try:
        result = vm.run(COPY_SOURCE + "ps -p 1 -o comm=; /usr/src/posko/setup.sh hub"
                        f" --server-name hub.polres.example --wheelhouse {WHEELS_IN_VM}", timeout=900,
                        check=False)
        out = result.stdout
        assert out.startswith("systemd\n"), out[:200]
        assert result.returncode == 0 and "done: role hub installed" in out, out[-3000:] + journal(vm, HUB_UNITS)
        yield vm
    finally:
        vm.stop()


def test_hub_services_are_active_and_answer_through_nginx(hub_vm: VM) -> None:
    out = hub_vm.run(
        HUB_ANSWERS
        + "curl -sk -D - -o /dev/null https://127.0.0.1/masuk --resolve hub.polres.example:443:127.0.0.1;"
        f" for u in {' '.join(HUB_UNITS)} mosquitto nginx; do echo \"$u $(systemctl is-active $u)\"; done;"
        " journalctl -b -u posko-arbiter --no-pager -o cat | tail -5", check=False).stdout
    assert "https:200" in out, out
    assert "strict-transport-security: max-age=31536000" in out.lower(), out
    for unit in [*HUB_UNITS, "mosquitto", "nginx"]:
        assert f"\n{unit} active\n" in out, out
    hub = show(hub_vm, "posko-hub", "User", "Type", "WatchdogUSec", "Restart", "MainPID")
    assert (hub["User"], hub["Type"], hub["WatchdogUSec"], hub["Restart"]) == ("posko", "notify", "1min", "always")
    assert "mqtt 127.0.0.1:1883" in out and "not authori" not in out.lower(), out


# A unit's or a phone's MQTT login at the central broker, tried once from inside the machine
# with the hub's own paho: over TLS on 8883 as a unit's bridge logs in, or over wss through
# nginx's /mqtt as a phone does. Prints "<transport> <user>: <CONNACK reason>".
MQTT_LOGIN = """
import sys, paho.mqtt.client as mqtt
transport, user, password = sys.argv[1:4]
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user, transport=transport)
if transport == "websockets":
    c.ws_set_options(path="/mqtt")
c.tls_set(ca_certs="/etc/posko/tls/hub.crt")
c.username_pw_set(user, password)
reasons = []
def connected(client, userdata, flags, reason, properties):
    reasons.append(str(reason))
    client.disconnect()
c.on_connect = connected
try:
    c.connect("127.0.0.1", 443 if transport == "websockets" else 8883, 30)
    c.loop_forever()
except Exception as exc:
    reasons.append(f"error {type(exc).__name__}: {exc}")
print(f"{transport} {user}: {reasons[0] if reasons else 'no answer'}")
"""
AS_POSKO = "runuser -u posko -- env POSKO_CONFIG=/etc/posko/posko.toml /opt/posko/current/bin/posko "


def mqtt_login(vm: VM, user: str, password: str, transport: str = "tcp") -> str:
    """The central broker's answer to one login: 'Success', 'Not authorized', ..."""
    script = (f"cat > /root/mqtt_login.py <<'EOF'\n{MQTT_LOGIN}\nEOF\n"
              f"timeout {60 * SLOWER} /opt/posko/current/bin/python -I /root/mqtt_login.py {transport} {user} '{password}'"
              " || echo \"exit $?\"")
    out = vm.run(script).stdout.strip()
    prefix = f"{transport} {user}: "
    assert out.startswith(prefix), out
    return out[len(prefix):]


def wait_login(vm: VM, user: str, password: str, want: str, timeout: float = 60) -> None:
    """Until the broker answers `want` to this login (it changes once Mosquitto reloaded)."""
    deadline = time.monotonic() + timeout * SLOWER
    while (got := mqtt_login(vm, user, password)) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"{user}: the broker still answers {got!r}, not {want!r}\n"
                                 + vm.run("systemctl status --no-pager posko-broker-reload.path"
                                          " posko-broker-reload.service 2>&1 | tail -20;"
                                          " journalctl -b -u mosquitto --no-pager -o cat | tail -10", check=False).stdout)
        time.sleep(2)


def test_the_hub_rewriting_a_units_broker_login_reloads_mosquitto_by_its_path_unit(hub_vm: VM) -> None:
    """The hub (user posko, in its sandbox) rewrites /var/lib/posko-broker/units.passwd at a
    unit's enrolment and at `posko hub units rotate-broker`; only posko-broker-reload.path makes
    Mosquitto read it (a reload: the same main PID). Without it the enrolled unit's login would
    be refused and the rotated one still accepted."""
    assert hub_vm.run("systemctl is-enabled posko-broker-reload.path; systemctl is-active posko-broker-reload.path;"
                      " systemctl is-active mosquitto").stdout == "enabled\nactive\nactive\n"
    broker = show(hub_vm, "mosquitto", "MainPID", "NRestarts", "ExecMainStartTimestampMonotonic")
    reloads_before = hub_vm.run("journalctl -b -u mosquitto --no-pager -o cat | grep -c '^Reloaded' || true").stdout
    # A maintainer adds the unit on the hub; the unit enrols over HTTPS through nginx, and the
    # hub answers its broker login once.
    code = hub_vm.run(AS_POSKO + "hub units add ptt-07 --name 'Posko Uji'").stdout.strip().splitlines()[-1]
    enrolled = json.loads(hub_vm.run(
        HUB_ANSWERS + "curl -fsk -H 'Content-Type: application/json'"
        f" -d '{{\"unit\": \"ptt-07\", \"code\": \"{code}\"}}' https://127.0.0.1/api/v1/enroll").stdout.splitlines()[-1])
    first, token = enrolled["broker"]["password"], enrolled["token"]
    assert enrolled["broker"]["user"] == "ptt-07"
    assert "ptt-07:" in hub_vm.run("cut -d: -f1 /var/lib/posko-broker/units.passwd | sed 's/$/:/'").stdout
    wait_login(hub_vm, "ptt-07", first, "Success")
    assert mqtt_login(hub_vm, "ptt-07", "not-" + first) == "Not authorized"
    # A rotation, the way a maintainer does it: the old password is refused without a restart.
    out = hub_vm.run(AS_POSKO + "hub units rotate-broker ptt-07").stdout
    assert "old broker password refused" in out, out
    wait_login(hub_vm, "ptt-07", first, "Not authorized")
    # The unit asks for its new login with its token (firmware/broker_login.py does this).
    renewed = json.loads(hub_vm.run(f"curl -fsk -X POST -H 'Authorization: Bearer {token}'"
                                    " https://127.0.0.1/api/v1/broker-login").stdout)
    second = renewed["password"]
    assert second != first and renewed["user"] == "ptt-07"
    wait_login(hub_vm, "ptt-07", second, "Success")
    assert mqtt_login(hub_vm, "ptt-07", first) == "Not authorized"
    # Reloaded, never restarted; by the path unit's service.
    after = show(hub_vm, "mosquitto", "MainPID", "NRestarts", "ExecMainStartTimestampMonotonic")
    assert after == broker, (broker, after)
    out = hub_vm.run("journalctl -b -u mosquitto --no-pager -o cat | grep -c '^Reloaded' || true;"
                     " journalctl -b -u posko-broker-reload.service --no-pager -o cat | tail -5").stdout
    assert int(out.split()[0]) >= int(reloads_before.strip() or 0) + 3, out  # enrolment, rotation, new login
    assert "Finished posko-broker-reload.service" in out, out


def test_wss_through_nginx_reaches_the_central_broker(hub_vm: VM) -> None:
    """`location = /mqtt` in nginx and `listener 8080 lo` in Mosquitto: an MQTT login over
    wss://127.0.0.1/mqtt with the hub's certificate, checked against the hub-managed file."""
    code = hub_vm.run(AS_POSKO + "hub units add ptt-08").stdout.strip().splitlines()[-1]
    enrolled = json.loads(hub_vm.run(
        "curl -fsk -H 'Content-Type: application/json'"
        f" -d '{{\"unit\": \"ptt-08\", \"code\": \"{code}\"}}' https://127.0.0.1/api/v1/enroll").stdout)
    password = enrolled["broker"]["password"]
    wait_login(hub_vm, "ptt-08", password, "Success")
    assert mqtt_login(hub_vm, "ptt-08", password, "websockets") == "Success"
    assert mqtt_login(hub_vm, "ptt-08", "not-" + password, "websockets") == "Not authorized"
    out = hub_vm.run(
        "curl -sk --http1.1 -o /dev/null -w 'upgrade:%{http_code}\\n' --max-time 10"
        " -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13'"
        " -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H 'Sec-WebSocket-Protocol: mqtt'"
        " https://127.0.0.1/mqtt || true;"
        " curl -s -o /dev/null -w 'plain:%{http_code}\\n' http://127.0.0.1/mqtt;"
        " ss -Hltn 'sport = :8080' | awk '{print \"listen:\" $4}'").stdout
    assert "upgrade:101" in out and "plain:301" in out, out
    # Loopback only. libwebsockets binds `lo` as an IPv6 socket on ::ffff:127.0.0.1 (seen here).
    bound = [line[len("listen:"):].rsplit(":", 1)[0].strip("[]") for line in out.splitlines()
             if line.startswith("listen:")]
    addresses = [ipaddress.ip_address(a) for a in bound]
    assert addresses and all((getattr(a, "ipv4_mapped", None) or a).is_loopback for a in addresses), out


ISSUE_TWO_LOGINS = """
import json, os, sys, time
from posko.config import load_settings
from hub import unit_logins
from hub.cli import _session
s = load_settings()
unit, go = sys.argv[1:3]
with _session(s) as db:
    first = unit_logins.issue(db, s, unit, throttle=False)
    while not os.path.exists(go):
        time.sleep(0.05)
    second = unit_logins.issue(db, s, unit, throttle=False)
print(json.dumps([first.password, second.password]))
"""


def test_a_login_the_hub_rewrites_during_a_reload_takes_effect_too(hub_vm: VM) -> None:
    """systemd does not watch a path unit's files while the service it started runs: a
    rewrite by the hub just after Mosquitto read the previous one (two rotations or
    revocations in a row) must not be left unread until some later change."""
    hub_vm.run(AS_POSKO + "hub units add ptt-09")
    hub_vm.run(f"cat > /usr/local/lib/posko-issue-two.py <<'EOF'\n{ISSUE_TWO_LOGINS}\nEOF\n")
    log = "/var/log/mosquitto/mosquitto.log"
    out = hub_vm.run(
        f"n=$(grep -c 'Reloading config' {log} || true); rm -f /run/posko-go;"
        " runuser -u posko -- env POSKO_CONFIG=/etc/posko/posko.toml /opt/posko/current/bin/python -I"
        " /usr/local/lib/posko-issue-two.py ptt-09 /run/posko-go > /root/two.json & kp=$!;"
        # Mosquitto has taken the first rewrite (it reads the files right after this line).
        f" for i in $(seq {3000 * SLOWER}); do [ \"$(grep -c 'Reloading config' {log})\" -gt \"$n\" ] && break;"
        " sleep 0.1; done; touch /run/posko-go;"
        " echo \"at-second:$(systemctl show -p ActiveState --value posko-broker-reload.service)\";"
        " wait $kp; cat /root/two.json").stdout
    # The second rewrite was made while the service was still at work on the first.
    assert "at-second:activating" in out, out
    first, second = json.loads(out.splitlines()[-1])
    wait_login(hub_vm, "ptt-09", second, "Success")
    assert mqtt_login(hub_vm, "ptt-09", first) == "Not authorized"
    out = hub_vm.run("journalctl -b -u posko-broker-reload.service --no-pager -o cat | tail -8").stdout
    assert "reloading again" in out, out


def test_a_hung_service_is_restarted_after_its_watchdog_timeout(hub_vm: VM) -> None:
    """SIGSTOP: no more pings; systemd aborts and restarts it after WatchdogSec (30 s, 60 s)."""
    before = {u: show(hub_vm, u, "MainPID", "NRestarts", "WatchdogUSec") for u in ("posko-hub-ingest", "posko-hub")}
    assert before["posko-hub-ingest"]["WatchdogUSec"] == "30s" and before["posko-hub"]["WatchdogUSec"] == "1min"
    hub_vm.run(" ".join(f"kill -STOP {p['MainPID']};" for p in before.values()))
    stopped = time.monotonic()
    ingest = wait_new_main_pid(hub_vm, "posko-hub-ingest", before["posko-hub-ingest"]["MainPID"], 60)
    assert time.monotonic() - stopped > 25  # not before its WatchdogSec=30
    hub = wait_new_main_pid(hub_vm, "posko-hub", before["posko-hub"]["MainPID"], 100)
    assert time.monotonic() - stopped > 55  # WatchdogSec=60
    for unit, props in (("posko-hub-ingest", ingest), ("posko-hub", hub)):
        assert int(props["NRestarts"]) == int(before[unit]["NRestarts"]) + 1, (unit, props)
    out = hub_vm.run(HUB_ANSWERS + "journalctl -b -u posko-hub -u posko-hub-ingest --no-pager -o cat"
                     " | grep -i -E 'watchdog timeout|scheduled restart' || true").stdout
    assert "https:200" in out, out  # the new main process answers through nginx
    assert out.count("Watchdog timeout") >= 2, out


def test_restart_always_brings_back_a_killed_service(hub_vm: VM) -> None:
    before = show(hub_vm, "posko-arbiter", "MainPID", "NRestarts", "RestartUSec")
    assert before["RestartUSec"] == "1s"
    hub_vm.run(f"kill -KILL {before['MainPID']}")
    after = wait_new_main_pid(hub_vm, "posko-arbiter", before["MainPID"], 30)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    out = hub_vm.run("sleep 2; journalctl -b -u posko-arbiter --no-pager -o cat | tail -4").stdout
    assert "mqtt 127.0.0.1:1883" in out, out  # the new arbiter reached the broker again


def test_systemd_applies_the_sandbox_to_the_running_hub(hub_vm: VM) -> None:
    pid = show(hub_vm, "posko-hub", "MainPID")["MainPID"]
    out = hub_vm.run(
        f"grep -E '^(Umask|NoNewPrivs|Uid):' /proc/{pid}/status;"
        " stat -c 'state %a %U:%G' /var/lib/posko;"
        # Inside the service's own mount namespace, as its user:
        f" nsenter -t {pid} -m setpriv --reuid=posko --regid=posko --init-groups sh -c '"
        " touch /usr/posko-was-here 2>&1 | sed s/^/usr:/;"
        " touch /etc/posko-was-here 2>&1 | sed s/^/etc:/;"
        " ls /root 2>&1 | sed s/^/home:/; ls -A /home | wc -l | sed s/^/home-entries:/;"
        " touch /var/lib/posko/probe && echo state-writable && rm /var/lib/posko/probe;"
        " touch /tmp/probe && echo tmp-writable'; { ls /tmp/probe 2>&1 || true; } | sed s/^/host-tmp:/;"
        # What the service itself wrote into its state directory: 0600 (UMask=0077).
        " find /var/lib/posko -type f -newer /etc/posko/posko.toml -printf 'file %m %u %p\\n'").stdout
    assert re.search(r"^Umask:\s+0077$", out, re.M), out
    assert re.search(r"^NoNewPrivs:\s+1$", out, re.M), out
    assert "state 700 posko:posko" in out
    assert re.search(r"^usr:.*Read-only file system", out, re.M), out
    assert re.search(r"^etc:.*Read-only file system", out, re.M), out
    assert re.search(r"^home:.*(Permission denied|No such file)", out, re.M) or "home-entries:0" in out, out
    assert "state-writable" in out and "tmp-writable" in out
    assert "host-tmp:" in out and "No such file" in out.split("host-tmp:")[1].splitlines()[0]  # PrivateTmp
    files = re.findall(r"^file (\d+) (\S+) ", out, re.M)
    assert files and all(mode == "600" and owner == "posko" for mode, owner in files), out


def test_the_hub_comes_back_after_a_reboot(hub_vm: VM) -> None:
    first = hub_vm.boot_id
    second = hub_vm.reboot()
    assert second != first
    out = hub_vm.run(
        HUB_ANSWERS
        # The streams and the ingest start after the hub (After=): wait until none is starting.
        + f"for i in $(seq {60 * SLOWER}); do systemctl is-active {' '.join(HUB_UNITS)} | grep -q activating || break;"
        " sleep 1; done;"
        f" systemctl is-active {' '.join(HUB_UNITS)} mosquitto nginx;"
        " systemctl show -p NRestarts posko-hub; cat /proc/sys/kernel/random/boot_id").stdout
    assert "https:200" in out, out
    assert out.count("active\n") == 6 and "inactive" not in out and "failed" not in out, out
    assert "NRestarts=0" in out  # a fresh start at boot, not a restart loop
    assert second.replace("-", "") in out.replace("-", "")


@pytest.fixture(scope="module")
def ptt_vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VM]:
    vm = booted(tmp_path_factory.mktemp("ptt-vm"), memory_mb=1024)
    try:
        result = vm.run(COPY_SOURCE + "/usr/src/posko/setup.sh ptt --unit-id ptt-01 --posko-name 'Posko Uji'"
                        f" --hub https://hub.example --wheelhouse {WHEELS_IN_VM}", timeout=900, check=False)
        out = result.stdout
        assert result.returncode == 0 and "done: role ptt installed" in out, out[-3000:] + journal(vm, ["posko-unit"])
        yield vm
    finally:
        vm.stop()


HEARTBEAT = ("pw=$(sed -n 's/^password = \"\\(.*\\)\"/\\1/p' /etc/posko/posko.toml);"
             " mosquitto_sub -h 127.0.0.1 -u ptt-01 -P \"$pw\" -t 'posko/v1/unit/+/status' -C 1 -W 40 -v\n")


def test_ptt_agent_runs_under_systemd_and_beats_on_the_local_broker(ptt_vm: VM) -> None:
    out = ptt_vm.run("systemctl is-active posko-unit mosquitto posko-update-restart.path;" + HEARTBEAT
                     + "journalctl -b -u posko-unit --no-pager -o cat | head -20").stdout
    assert out.startswith("active\nactive\nactive\n"), out
    unit = show(ptt_vm, "posko-unit", "User", "Type", "WatchdogUSec", "Restart")
    assert (unit["User"], unit["Type"], unit["WatchdogUSec"], unit["Restart"]) == ("posko", "notify", "30s", "always")
    assert re.search(r"^posko/v1/unit/ptt-01/status \{.*\"unit\": ?\"ptt-01\"", out, re.M), out


def test_ptt_update_guard_runs_before_the_agent_under_systemd(ptt_vm: VM) -> None:
    """ExecStartPre=- (its failure is ignored): only the journal tells whether the guard ran."""
    out = ptt_vm.run("journalctl -b -u posko-unit --no-pager -o cat | head -20").stdout
    assert "update guard: nothing to do (idle)" in out, out


def test_ptt_agent_is_restarted_when_hung_and_after_a_reboot(ptt_vm: VM) -> None:
    before = show(ptt_vm, "posko-unit", "MainPID", "NRestarts")
    ptt_vm.run(f"kill -STOP {before['MainPID']}")
    after = wait_new_main_pid(ptt_vm, "posko-unit", before["MainPID"], 60)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert "ptt-01" in ptt_vm.run(HEARTBEAT).stdout  # the new agent beats again
    ptt_vm.reboot()
    # Emulated, the agent may still be starting (its notify READY) when the machine answers.
    wait = f"for i in $(seq {120 * SLOWER}); do systemctl is-active -q posko-unit && break; sleep 1; done;"
    out = ptt_vm.run(wait + "systemctl is-active posko-unit mosquitto posko-update-restart.path;" + HEARTBEAT).stdout
    assert out.startswith("active\nactive\nactive\n") and "posko/v1/unit/ptt-01/status" in out, out


KEEP_LOGIN = """
import sys
from posko.config import load_settings
from posko.enroll import write_broker_login
s = load_settings()
print(write_broker_login(s, {"user": s.posko.unit_id, "password": sys.argv[1], "login": sys.argv[2]}, s.posko.unit_id))
"""


def test_ptt_new_broker_login_reaches_the_bridge_through_its_path_unit(ptt_vm: VM) -> None:
    """The agent (user posko) keeps the hub's login in /var/lib/posko/unit/broker-login.json
    (posko.enroll.write_broker_login, as firmware/broker_login.py does after a rotation); only
    posko-bridge-login.path, as root, writes it into the bridge and restarts Mosquitto."""
    assert ptt_vm.run("systemctl is-enabled posko-bridge-login.path; systemctl is-active posko-bridge-login.path"
                      ).stdout == "enabled\nactive\n"
    ptt_vm.run(f"cat > /usr/local/lib/posko-keep-login.py <<'EOF'\n{KEEP_LOGIN}\nEOF\n")
    conf = "/etc/mosquitto/conf.d/posko-unit.conf"
    for n, password in enumerate(("Fj3kQ9zWm2LxP0vRt7YbN5sA", "Hq8Zp1Lk4Nw7Rt2Mv9Xc6Bd3")):
        before = show(ptt_vm, "mosquitto", "MainPID")["MainPID"]
        out = ptt_vm.run("runuser -u posko -- env POSKO_CONFIG=/etc/posko/posko.toml"
                         f" /opt/posko/current/bin/python -I /usr/local/lib/posko-keep-login.py {password} login{n};"
                         " stat -c '%a %U' /var/lib/posko/unit/broker-login.json").stdout
        assert out.endswith("/var/lib/posko/unit/broker-login.json\n600 posko\n"), out
        deadline = time.monotonic() + 60 * SLOWER
        while f"remote_password {password}\n" not in (text := ptt_vm.run(f"cat {conf}").stdout):
            if time.monotonic() > deadline:
                raise AssertionError("the bridge did not get the new login:\n" + text + ptt_vm.run(
                    "systemctl status --no-pager posko-bridge-login.path posko-bridge-login.service 2>&1 | tail -20",
                    check=False).stdout)
            time.sleep(1)
        assert "remote_username ptt-01\n" in text and text.count("remote_password ") == 1, text
        wait_new_main_pid(ptt_vm, "mosquitto", before, 60)  # restarted: a bridge reads its login at start
    out = ptt_vm.run(f"stat -c '%a %U:%G' {conf}; journalctl -b -u posko-bridge-login.service --no-pager -o cat").stdout
    assert out.startswith("640 root:mosquitto\n"), out
    assert out.count(f"bridge login: written to {conf}") >= 2, out
    assert "systemctl try-restart mosquitto.service -> exit 0" in out, out
    assert "posko/v1/unit/ptt-01/status" in ptt_vm.run(HEARTBEAT).stdout  # the agent on the restarted broker


def test_ptt_systemd_watches_no_file_of_a_path_unit_while_its_service_runs(ptt_vm: VM) -> None:
    """Why posko-bridge-login.service and posko-broker-reload.service look at their files again
    before they end: Debian 12's systemd drops a PathChanged= change made while the service
    it started is still running (a throwaway path unit in /run shows it)."""
    out = ptt_vm.run(
        "mkdir -p /run/posko-probe; rm -f /run/posko-probe/*;"
        " printf '[Path]\\nPathChanged=/run/posko-probe/file\\n' > /run/systemd/system/posko-probe.path;"
        " printf '[Service]\\nType=oneshot\\nExecStart=/bin/sh -c \"echo run >> /run/posko-probe/runs; sleep 5\"\\n'"
        " > /run/systemd/system/posko-probe.service;"
        " echo zero > /run/posko-probe/file; systemctl daemon-reload; systemctl start posko-probe.path;"
        " sleep 1; echo one > /run/posko-probe/file;"
        f" for i in $(seq {100 * SLOWER}); do [ -s /run/posko-probe/runs ] && break; sleep 0.1; done;"
        " echo two > /run/posko-probe/file;"  # while the service runs
        " echo \"during:$(systemctl show -p ActiveState --value posko-probe.service)\";"
        f" for i in $(seq {100 * SLOWER}); do systemctl is-active -q posko-probe.service || break; sleep 0.2; done;"
        " sleep 5; echo \"runs:$(wc -l < /run/posko-probe/runs)\"; echo three > /run/posko-probe/file;"
        f" for i in $(seq {100 * SLOWER}); do [ \"$(wc -l < /run/posko-probe/runs)\" -ge 2 ] && break; sleep 0.2; done;"
        " echo \"later:$(wc -l < /run/posko-probe/runs)\"; systemctl stop posko-probe.path;"
        " rm -f /run/systemd/system/posko-probe.*; systemctl daemon-reload").stdout
    assert "during:activating" in out, out
    assert "runs:1" in out, out  # the change made during the run woke nothing
    assert "later:2" in out, out  # a change after it does


KEEP_TWO_LOGINS = """
import os, sys, time
from posko.config import load_settings
from posko.enroll import write_broker_login
s, unit = load_settings(), load_settings().posko.unit_id
first, second, go = sys.argv[1:4]
write_broker_login(s, {"user": unit, "password": first, "login": "first"}, unit)
while not os.path.exists(go):
    time.sleep(0.05)
write_broker_login(s, {"user": unit, "password": second, "login": "second"}, unit)
"""


def test_ptt_a_login_kept_while_the_bridge_is_being_rewritten_is_not_lost(ptt_vm: VM) -> None:
    """systemd does not watch a path unit's files while the service it started runs: a second
    login kept while posko-bridge-login.service still restarts Mosquitto for the first one
    must reach the bridge all the same (two renewals in a row, or a renewal during the
    rewrite), else the bridge keeps a refused login until the next change."""
    first, second = "Kd7Pq2Xz9Lm4Rw6Tb1Nv8Yc", "Zr5Mx3Qa8Vn1Hk6Jp4Lt2Ws"
    conf = "/etc/mosquitto/conf.d/posko-unit.conf"
    ptt_vm.run(f"cat > /usr/local/lib/posko-keep-two.py <<'EOF'\n{KEEP_TWO_LOGINS}\nEOF\n")
    out = ptt_vm.run(
        "rm -f /run/posko-go; runuser -u posko -- env POSKO_CONFIG=/etc/posko/posko.toml"
        f" /opt/posko/current/bin/python -I /usr/local/lib/posko-keep-two.py {first} {second} /run/posko-go & kp=$!;"
        # The service has written the first login into the bridge; now it restarts Mosquitto.
        f" for i in $(seq {600 * SLOWER}); do grep -q 'remote_password {first}' {conf} && break; sleep 0.1; done;"
        " echo \"at-second:$(systemctl show -p ActiveState --value posko-bridge-login.service)\";"
        " touch /run/posko-go; wait $kp;"
        " echo \"after-second:$(systemctl show -p ActiveState --value posko-bridge-login.service)\"").stdout
    # The second login was kept while the service was still at work on the first.
    assert "at-second:activating" in out and "after-second:activating" in out, out
    deadline = time.monotonic() + 60 * SLOWER
    while True:
        state = show(ptt_vm, "posko-bridge-login.service", "ActiveState")["ActiveState"]
        text = ptt_vm.run(f"cat {conf}").stdout
        if state == "inactive" and f"remote_password {second}\n" in text:
            break
        if state == "inactive":  # done with an older login: give a late trigger some seconds more
            deadline = min(deadline, time.monotonic() + 5 * SLOWER)
        if time.monotonic() > deadline:
            raise AssertionError(f"the bridge kept an older login ({state}):\n{text}" + ptt_vm.run(
                "journalctl -b -u posko-bridge-login.service --no-pager -o cat | tail -12", check=False).stdout)
        time.sleep(1)
    assert show(ptt_vm, "mosquitto", "ActiveState")["ActiveState"] == "active"


# -- the kiosk: Chromium in cage on the machine's own screen (qemu's VGA card) --------------
KIOSK_UNITS = ["posko-kiosk-ui", "posko-unit", "posko-kiosk-browser"]
# Emulated, Chromium takes minutes to paint its first frame; on a Pi some seconds.
BROWSER_UP = ("for i in $(seq %d); do [ \"$(systemctl show posko-kiosk-browser -p ActiveState --value)\" = active ]"
              " && curl -fs http://127.0.0.1:9222/json/list | grep -q '127.0.0.1:18081' && break; sleep 2; done;"
              " systemctl is-active " + " ".join(KIOSK_UNITS) + "\n") % (150 * SLOWER)


@pytest.fixture(scope="module")
def kiosk_vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VM]:
    vm = booted(tmp_path_factory.mktemp("kiosk-vm"), memory_mb=2048, screen=True)
    try:
        result = vm.run(COPY_SOURCE + "/usr/src/posko/setup.sh kiosk --unit-id kiosk-01 --posko-name 'Posko Alun-alun'"
                        f" --hub http://127.0.0.1:18080 --wheelhouse {WHEELS_IN_VM}", timeout=900, check=False)
        out = result.stdout
        assert result.returncode == 0 and "done: role kiosk installed" in out, out[-3000:] + journal(vm, KIOSK_UNITS)
        # The test machine has a screen but no GPU, and Mesa's software GL (llvmpipe) crashed
        # in it, in cage's renderer and in Chromium's GPU process alike (segfaults, under
        # qemu's emulator): there, and only there, cage composes with wlroots' pixman
        # renderer and Chromium draws without a GPU process. A Pi has its GPU.
        vm.run("mkdir -p /etc/systemd/system/posko-kiosk-browser.service.d;"
               " printf '[Service]\\nEnvironment=WLR_RENDERER=pixman\\n'"
               " > /etc/systemd/system/posko-kiosk-browser.service.d/test-machine-no-gpu.conf;"
               " echo 'export CHROMIUM_FLAGS=\"$CHROMIUM_FLAGS --disable-gpu\"' > /etc/chromium.d/test-machine-no-gpu\n")
        # The browser's unit is wanted by graphical.target, which setup.sh makes the default:
        # the boot after the install is how a kiosk shows its screen.
        vm.reboot()
        yield vm
    finally:
        vm.stop()


def screen(vm: VM, artifacts: Path, name: str):
    """The machine's screen now, as a Pillow image (also saved as a PNG to look at)."""
    from PIL import Image  # lazy: Pillow only for the kiosk's screen

    image = Image.open(vm.screendump(vm.folder / f"{name}.ppm")).convert("RGB")
    image.save(artifacts / f"{name}.png")
    return image


def test_kiosk_browser_shows_the_kiosk_page_on_the_screen_as_the_kiosk_user(kiosk_vm: VM, artifacts: Path) -> None:
    out = kiosk_vm.run(BROWSER_UP, timeout=400, check=False).stdout
    assert out.endswith("active\nactive\nactive\n"), out + journal(kiosk_vm, KIOSK_UNITS)
    facts = kiosk_vm.run(
        "loginctl list-sessions --no-legend; echo getty: $(systemctl is-active getty@tty1 || true);"
        " ps -o user:20=,comm= -C cage,chromium | sort -u; ss -Hltn 'sport = :9222' | awk '{print \"devtools\", $4}';"
        " curl -s http://127.0.0.1:9222/json/list\n").stdout
    # the kiosk user's own session on the seat's first console, no getty there, no other login
    assert re.search(r"^\s*\d+\s+\d+\s+posko-screen\s+seat0\s+tty1", facts, re.M), facts
    assert len(re.findall(r"^\s*\d+\s+\d+\s+\S+", facts, re.M)) == 1, facts
    assert "getty: inactive" in facts, facts
    assert re.search(r"^posko-screen\s+cage$", facts, re.M) and re.search(r"^posko-screen\s+chromium$", facts, re.M), facts
    assert not re.search(r"^(?!posko-screen)\S+\s+chromium$", facts, re.M), facts
    assert set(re.findall(r"^devtools (\S+)$", facts, re.M)) == {"127.0.0.1:9222"}, facts  # loopback only
    pages = json.loads(facts[facts.index("["):])
    assert [p["url"] for p in pages if p["type"] == "page"] == ["http://127.0.0.1:18081/"], pages
    # what a resident sees: the kiosk page, painted over the whole screen (not a console, not
    # a blank one). Rendered emulated and without a GPU, it may still be painting: look again.
    deadline = time.monotonic() + 120 * SLOWER
    while True:
        image = screen(kiosk_vm, artifacts, "vm-kiosk-screen")
        colours = image.getcolors(maxcolors=1 << 16)
        if colours is None or len(colours) > 50 or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert image.size[0] >= 640 and (colours is None or len(colours) > 50), (image.size, colours and colours[:5])
    text = kiosk_vm.run("curl -s http://127.0.0.1:9222/json/version | head -3").stdout
    assert "Chrome" in text or "Chromium" in text, text


def test_kiosk_browser_is_restarted_when_it_dies_and_when_it_freezes(kiosk_vm: VM) -> None:
    out = kiosk_vm.run(BROWSER_UP, timeout=400, check=False).stdout
    assert out.endswith("active\nactive\nactive\n"), out + journal(kiosk_vm, KIOSK_UNITS)
    before = show(kiosk_vm, "posko-kiosk-browser", "MainPID", "NRestarts")
    # dies: the browser's main process killed (a crash); cage ends with it, so does the unit
    kiosk_vm.run("pkill -KILL -o -u posko-screen -x chromium")
    after_kill = wait_new_main_pid(kiosk_vm, "posko-kiosk-browser", before["MainPID"], timeout=300)
    assert int(after_kill["NRestarts"]) == int(before["NRestarts"]) + 1, after_kill
    out = kiosk_vm.run(BROWSER_UP, timeout=400, check=False).stdout
    assert out.endswith("active\nactive\nactive\n"), out + journal(kiosk_vm, ["posko-kiosk-browser"])
    # freezes: every Chromium process stopped; the page paints no frame, `posko watch`
    # stops the pings, and systemd kills the unit after WatchdogSec (45 s) and starts it again
    kiosk_vm.run("pkill -STOP -u posko-screen -x chromium")
    after_freeze = wait_new_main_pid(kiosk_vm, "posko-kiosk-browser", after_kill["MainPID"], timeout=400)
    assert int(after_freeze["NRestarts"]) == int(after_kill["NRestarts"]) + 1, after_freeze
    log = kiosk_vm.run("journalctl -b -u posko-kiosk-browser --no-pager -o cat | grep -i watchdog | tail -3",
                       check=False).stdout
    assert "Watchdog timeout" in log, log
    out = kiosk_vm.run(BROWSER_UP, timeout=400, check=False).stdout
    assert out.endswith("active\nactive\nactive\n"), out + journal(kiosk_vm, ["posko-kiosk-browser"])
    # nothing of the frozen browser is left: every process of the kiosk user runs
    states = kiosk_vm.run("ps -o stat=,comm= -u posko-screen").stdout
    assert not re.search(r"^T", states, re.M), states
