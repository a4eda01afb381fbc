"""`posko doctor`: what a maintainer on SSH at 02:00 needs to know about this unit, in one screen.

Each check is a small function returning a `Check` (ok / warn / fail with a one-line
detail and, when something is wrong, what to do). Checks never raise: a broken part is a
finding, not a traceback.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlparse

import click
import paho.mqtt.client as mqtt

from posko import __version__, topics
from posko.broker import with_dev_login
from posko.config import Settings, load_settings
from posko.enroll import read_token
from posko.hubclient import SERVICE
from posko.kiosk_status import kiosk_url, outbox_figures
from posko.messages import BadMessage, Heartbeat
from posko.status import running_release, service_states, update_state

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    """One finding."""

    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def check_config(settings: Settings) -> Check:
    return Check("config", OK, f"valid ({settings.source}); unit {settings.posko.unit_id}, "
                 f"state {settings.state_dir}")


def check_disk(settings: Settings, min_free_mb: float = 500.0) -> Check:
    path = settings.state_dir if settings.state_dir.exists() else settings.base_dir
    usage = shutil.disk_usage(path)
    free_mb = usage.free / 1e6
    if free_mb < min_free_mb:
        return Check("disk", FAIL, f"{free_mb:.0f} MB free on {path}",
                     "free space: posko outbox purge --synced, remove old logs/recordings")
    return Check("disk", OK, f"{free_mb:.0f} MB free on {path}")


def check_broker(settings: Settings, timeout_s: float = 3.0) -> tuple[Check, Check]:
    """The local broker, and the state of its bridges to the central broker ($SYS notifications)."""
    m = settings.mqtt
    connected = threading.Event()
    refused: list[str] = []
    bridges: dict[str, str] = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"posko-doctor-{time.time_ns()}")
    if m.username:
        client.username_pw_set(m.username, m.password or None)

    def on_connect(c, u, flags, rc, props):
        if getattr(rc, "is_failure", False):
            refused.append(str(rc))
        else:
            c.subscribe("$SYS/broker/connection/+/state")
        connected.set()

    def on_message(c, u, msg):
        name = msg.topic.split("/")[3]
        bridges[name] = "up" if msg.payload.strip() == b"1" else "down"

    client.on_connect = on_connect
    client.on_message = on_message
    where = f"{m.host}:{m.port}"
    try:
        client.connect(m.host, m.port, keepalive=10)
    except OSError as exc:
        return (Check("broker", FAIL, f"local broker {where} unreachable: {exc.strerror or exc}",
                      "systemctl status mosquitto; journalctl -u mosquitto"),
                Check("bridge", WARN, "unknown (local broker down)"))
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            return (Check("broker", FAIL, f"local broker {where} did not answer",
                          "systemctl restart mosquitto"), Check("bridge", WARN, "unknown"))
        if refused:
            return (Check("broker", FAIL, f"local broker {where} refused us: {refused[0]}",
                          "check [mqtt] username/password"), Check("bridge", WARN, "unknown"))
        time.sleep(0.5)  # retained $SYS bridge states arrive right after subscribing
    finally:
        client.loop_stop()
        client.disconnect()
    broker = Check("broker", OK, f"local broker {where} answers")
    if not bridges:
        bridge = Check("bridge", WARN, "no bridge configured on the local broker "
                       "(normal for the dev stack and the hub)")
    elif all(state == "up" for state in bridges.values()):
        bridge = Check("bridge", OK, ", ".join(f"{n} up" for n in sorted(bridges)))
    else:
        down = ", ".join(n for n, s in sorted(bridges.items()) if s != "up")
        bridge = Check("bridge", FAIL, f"bridge down: {down}",
                       "check the uplink (modem APN, Wi-Fi), then journalctl -u mosquitto")
    return broker, bridge


def check_subscriptions(settings: Settings, timeout_s: float = 3.0) -> Check:
    """Subscriptions the broker refused (an ACL that does not allow them), as the unit agent
    reports them in its retained heartbeat (`parts.agent.mqtt_refused`); doctor's own
    subscription to that heartbeat is checked the same way (its SUBACK)."""

    m = settings.mqtt
    try:
        topic = topics.unit_status(settings.posko.unit_id, m.topic_root)
    except ValueError as exc:
        return Check("mqtt acl", FAIL, str(exc), "set [posko] unit_id")
    got: list[bytes] = []
    suback: list[object] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"posko-doctor-{time.time_ns()}")
    if m.username:
        client.username_pw_set(m.username, m.password or None)
    client.on_connect = lambda c, u, f, rc, p: (
        done.set() if getattr(rc, "is_failure", False) else c.subscribe(topic, 1))
    client.on_subscribe = lambda c, u, mid, codes, p: (suback.extend(codes), done.set())

    def on_message(c, u, msg) -> None:
        got.append(msg.payload)

    client.on_message = on_message
    try:
        client.connect(m.host, m.port, keepalive=10)
    except OSError:
        return Check("mqtt acl", WARN, "unknown (local broker down)")
    client.loop_start()
    try:
        done.wait(timeout_s)
        deadline = time.monotonic() + 1.0  # a retained message comes right after the SUBACK
        while suback and not got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    if not suback:
        return Check("mqtt acl", WARN, "the local broker did not answer a subscription")
    code = suback[0]
    if getattr(code, "is_failure", False) or (isinstance(code, int) and code >= 0x80):
        return Check("mqtt acl", FAIL, f"the broker refused doctor's subscription to {topic} ({code})",
                     "the ACL of this user ([mqtt] username) must let it read its own status")
    if not got or not got[-1]:
        return Check("mqtt acl", WARN, f"no heartbeat from unit {settings.posko.unit_id} on the local broker",
                     "systemctl status posko-unit")
    try:
        beat = Heartbeat.from_json(got[-1])
    except BadMessage:
        beat = None
    if beat is None or beat.state != "online":
        return Check("mqtt acl", WARN, f"unit {settings.posko.unit_id} is offline (its last-will)",
                     "systemctl status posko-unit; journalctl -u posko-unit")
    refused = (beat.parts.get("agent") or {}).get("mqtt_refused") or {}
    if refused:
        listed = ", ".join(f"{p} ({why})" for p, why in sorted(refused.items()))
        return Check("mqtt acl", FAIL, f"the broker REFUSED the unit's subscriptions: {listed}",
                     "messages on them never arrive; regenerate the broker's ACL (gateway.acl) "
                     "and reload it: systemctl reload mosquitto")
    return Check("mqtt acl", OK, "every subscription of the unit agent granted")


def check_ingest(settings: Settings, stale_s: float = 60.0) -> Check | tuple[Check, ...]:
    """On a hub: the ingest's own status file (hub/ingest.py); nothing on a unit."""
    path = settings.state_dir / "hub" / "ingest-status.json"
    if not path.exists():
        return ()
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return Check("ingest", WARN, f"unreadable {path}: {exc}")
    age = time.time() - float(status.get("time", 0))
    if age > stale_s:
        return Check("ingest", FAIL, f"the hub's MQTT ingest last wrote its status {age:.0f} s ago",
                     "systemctl status posko-hub; journalctl -u posko-hub")
    refused = status.get("refused") or {}
    if refused:
        return Check("ingest", FAIL, "the broker REFUSED the ingest's subscriptions: "
                     + ", ".join(sorted(refused)), "the hub user's ACL must read unit status and alerts")
    if not status.get("connected"):
        return Check("ingest", FAIL, f"the hub's MQTT ingest is not connected to {status.get('broker')}",
                     "systemctl status mosquitto; check [mqtt] username/password of the hub")
    return Check("ingest", OK, f"connected to {status.get('broker')}; {status.get('acks_sent', 0)} acks "
                 f"sent, {status.get('acks_waiting', 0)} waiting; {status.get('unknown_units', 0)} status "
                 "messages from unknown units ignored")


def check_hub(settings: Settings, timeout_s: float = 5.0) -> Check:
    """The hub answers over HTTP(S); for HTTPS, how long its certificate stays valid."""
    url = settings.kiosk.hub_url.rstrip("/")
    parsed = urlparse(url)
    detail = ""
    if parsed.scheme == "https":
        try:
            ctx = ssl.create_default_context()
            with socket.create_connection((parsed.hostname, parsed.port or 443), timeout_s) as sock, \
                    ctx.wrap_socket(sock, server_hostname=parsed.hostname) as tls:
                cert = tls.getpeercert()
            expires = datetime.strptime(cert["notAfter"], "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
            days = (expires - datetime.now(UTC)).days
            if days < 14:
                return Check("hub", WARN, f"certificate of {parsed.hostname} expires in {days} days",
                             "renew the hub's certificate")
            detail = f"; certificate valid for {days} more days"
        except ssl.SSLCertVerificationError as exc:
            return Check("hub", FAIL, f"certificate of {parsed.hostname} rejected: {exc.verify_message}",
                         "install the hub's CA or renew its certificate")
        except OSError as exc:
            return Check("hub", FAIL, f"{url} unreachable: {exc}", "check the uplink and the hub")
    # GET /api/v1/ping names the service: a captive portal or a proxy's login page answers
    # HTTP too, and must not pass for the hub (posko.hubclient checks the same way).
    try:
        with urllib.request.urlopen(f"{url}/api/v1/ping", timeout=timeout_s) as resp:
            status, ctype, raw = resp.status, resp.headers.get("Content-Type", ""), resp.read(65536)
    except urllib.error.HTTPError as exc:
        status, ctype, raw = exc.code, exc.headers.get("Content-Type", "") if exc.headers else "", b""
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("hub", FAIL, f"{url} unreachable: {reason}",
                     "reports wait safely in the outbox; check the uplink (modem, Wi-Fi, APN)")
    if status >= 500:
        return Check("hub", FAIL, f"{url} answers HTTP {status}", "look at the hub's logs")
    try:
        data = json.loads(raw) if ctype.split(";")[0].strip() == "application/json" else None
    except ValueError:
        data = None
    if status != 200 or not isinstance(data, dict) or data.get("service") != SERVICE:
        kind = ctype.split(";")[0].strip() or "no content type"
        return Check("hub", FAIL, f"something answers at {url}, but not the Posko hub (HTTP {status}, {kind}): "
                     "a captive portal, a login page or a proxy",
                     "open the uplink's portal page or top up the data package; check [kiosk] hub_url")
    offset = _clock_offset(data.get("time"))
    if offset is not None and abs(offset) > 120:
        return Check("hub", WARN, f"{url} answers; this unit's clock is {-offset:+.0f} s off the hub's{detail}",
                     "reports still sort by the hub's receive time; set the clock (NTP) or fit an RTC")
    return Check("hub", OK, f"{url} answers as the Posko hub (HTTP {status}){detail}")


def _clock_offset(value: object) -> float | None:
    """The hub's time (ISO 8601) minus ours, in seconds; None when it cannot be read."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - time.time()
    except (ValueError, OverflowError):
        return None


def check_enrolment(settings: Settings) -> Check:
    token = read_token(settings)
    if not token:
        return Check("enrolment", FAIL, "this unit has no hub token",
                     "ask the hub admin for a code: posko enroll --hub URL --code CODE")
    return Check("enrolment", OK, "hub token present")


def check_outbox(settings: Settings) -> Check | tuple[Check, ...]:
    """The kiosk's outbox, as its running app reports it (a PTT-only unit has none)."""
    if not settings.unit.assistant_enabled:
        return ()
    stats = outbox_figures(settings, timeout_s=3.0)
    if stats is None:
        return Check("outbox", WARN, f"the kiosk app does not answer at {kiosk_url(settings)}",
                     "systemctl status posko-kiosk-ui; posko outbox list reads the outbox directly")
    pending, parked = stats.get("pending", 0), stats.get("parked", 0)
    oldest = stats.get("oldest_pending_s", 0.0)
    detail = f"{pending} waiting (oldest {oldest / 60:.0f} min), {parked} parked"
    refused = stats.get("refused", 0)
    if refused:
        detail += f" ({refused} refused by the hub as invalid: kept in the hub's quarantine)"
    if stats.get("storage_full"):
        return Check("outbox", FAIL, detail + "; the outbox disk is FULL: new reports cannot be saved",
                     "free space: posko outbox purge --synced, remove old logs/recordings")
    if parked:
        return Check("outbox", WARN, detail, "posko outbox list; posko outbox show ID; posko outbox retry ID")
    if pending and oldest > 3600:
        return Check("outbox", WARN, detail, "reports are not reaching the hub: see the hub and bridge lines")
    return Check("outbox", OK, detail)


def check_audio(settings: Settings) -> Check:
    """Lists sound devices in a child process (PortAudio can hang on a broken device)."""
    code = ("import pyaudio,json;p=pyaudio.PyAudio();"
            "print(json.dumps([(p.get_device_info_by_index(i)['name'],"
            "p.get_device_info_by_index(i)['maxInputChannels'],"
            "p.get_device_info_by_index(i)['maxOutputChannels']) for i in range(p.get_device_count())]));"
            "p.terminate()")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return Check("audio", FAIL, "listing sound devices hung", "replug the USB sound card")
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return Check("audio", WARN, f"PyAudio unavailable: {last}")
    devices = json.loads(out.stdout or "[]")
    want_in, want_out = settings.voice.input_device, settings.voice.output_device
    has_in = any(want_in in name and ins > 0 for name, ins, _ in devices)
    has_out = any(want_out in name and outs > 0 for name, _, outs in devices)
    if not has_in:
        return Check("audio", WARN, f"no capture device matching '{want_in}' (typed questions still work)",
                     "plug the USB microphone back in; the unit recovers by itself")
    if not has_out:
        return Check("audio", WARN, f"no playback device matching '{want_out}'", "check the speaker cable")
    return Check("audio", OK, f"capture '{want_in}' and playback '{want_out}' present")


# --- installed machines (setup.sh): services, clock, certificates, updates -----------------

def check_services(settings: Settings, states=None) -> Check | tuple[Check, ...]:
    """Every installed Posko service running, and how often systemd restarted it."""
    states = service_states() if states is None else states
    if states is None:
        return Check("services", OK, "systemd not running here (a laptop: `posko up` runs the parts)")
    if not states:
        return Check("services", WARN, "no Posko services installed", "./setup.sh kiosk|ptt|hub")
    out = []
    for s in states:
        detail = f"{s.active}/{s.sub}" + (f" since {s.since}" if s.since else "") + \
            (f", {s.restarts} restarts" if s.restarts else "")
        if not s.healthy:
            out.append(Check(s.name, FAIL, detail, f"posko logs; sudo systemctl restart {s.name}"))
        elif s.restarts >= 3:
            out.append(Check(s.name, WARN, detail, f"it keeps restarting: posko logs --errors (journalctl -u {s.name})"))
        else:
            out.append(Check(s.name, OK, detail))
    return tuple(out)


def clock_offset_s(url: str, timeout_s: float = 5.0) -> float:
    """Local clock minus the hub's (its HTTP Date header, 1 s resolution); OSError if unreachable."""
    started = time.time()
    req = urllib.request.Request(url.rstrip("/") + "/api/v1/openapi.json", method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            date = resp.headers.get("Date")
    except urllib.error.HTTPError as exc:
        date = exc.headers.get("Date")
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from None
    if not date:
        raise OSError("the hub sent no Date header")
    midpoint = (started + time.time()) / 2
    return midpoint - parsedate_to_datetime(date).timestamp()


def check_clock(settings: Settings) -> Check:
    """The unit's clock against the hub's: reports, alerts and TLS need the right time."""
    try:
        offset = clock_offset_s(settings.kiosk.hub_url)
    except OSError as exc:
        return Check("clock", WARN, f"offset to the hub unknown ({exc}); local time "
                     f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", "check the uplink; timedatectl")
    detail = f"{offset:+.0f} s from the hub"
    if abs(offset) > 60:
        return Check("clock", FAIL, detail, "set the time: sudo timedatectl set-ntp true "
                     "(or sudo date -s '...' from the hub's time), then restart Posko")
    if abs(offset) > 5:
        return Check("clock", WARN, detail, "NTP not synchronised? timedatectl timesync-status")
    return Check("clock", OK, detail)


def cert_days_left(path) -> int | None:
    """Days until the PEM certificate at path expires (None when there is no such file)."""
    if not Path(path).exists():
        return None
    result = subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-enddate"],
                            capture_output=True, text=True, timeout=10, check=True)
    not_after = result.stdout.strip().removeprefix("notAfter=")
    expires = datetime.strptime(not_after, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
    return (expires - datetime.now(UTC)).days


def subprocess_fingerprint(path) -> str:
    """The certificate's SHA-256 fingerprint (what a maintainer compares at enrolment)."""
    result = subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-fingerprint", "-sha256"],
                            capture_output=True, text=True, timeout=10)
    return result.stdout.strip() or "fingerprint unknown"


def check_certificates(settings: Settings, hub_cert: str = "/etc/posko/tls/hub.crt",
                       pinned: str = "/etc/posko/hub-ca.pem") -> Check:
    """The hub's own certificate (on the hub) or the one this unit pinned at enrolment."""
    for path, what, fix in ((hub_cert, "the hub's certificate", "make a new one: sudo rm "
                             f"{hub_cert} && sudo ./setup.sh hub, then re-pin it on every unit"),
                            (pinned, "the pinned hub certificate", "the hub's certificate changed or "
                             f"expires: sudo rm {pinned} && sudo ./setup.sh kiosk|ptt --hub URL --code CODE")):
        days = cert_days_left(path)
        if days is None:
            continue
        if days < 0:
            return Check("tls", FAIL, f"{what} ({path}) expired {-days} days ago", fix)
        if days < 30:
            return Check("tls", WARN, f"{what} ({path}) expires in {days} days", fix)
        fingerprint = subprocess_fingerprint(path)
        return Check("tls", OK, f"{what} ({path}) valid for {days} more days; {fingerprint}")
    return Check("tls", OK, "no certificate installed here (a laptop, or a hub URL over plain HTTP)")


def check_update(settings: Settings) -> Check:
    """The unit's last update (firmware/updater.py) and the release it runs."""
    state, release = update_state(settings), running_release()
    where = f"running {release}" if release else "not an installed release (checkout)"
    s = state.get("state", "idle")
    if s in ("rolled-back", "failed"):
        return Check("update", WARN, f"{where}; {state.get('version', '')} {s}: {state.get('reason', '')}",
                     "the unit kept the release that works; fix the release on the hub and publish a new one "
                     "(posko logs update)")
    if s == "trying":
        return Check("update", WARN, f"{where}; checking {state.get('version', '')} after the switch",
                     "wait up to 5 minutes; it rolls back by itself if unhealthy")
    if s == "waiting":
        return Check("update", OK, f"{where}; {state.get('version', '')} waits: {state.get('reason', '')}")
    return Check("update", OK, f"{where}; last update {s} {state.get('version', '')}".rstrip())


CHECKS: list[Callable[[Settings], Check | tuple[Check, ...]]] = [
    check_config, check_disk, check_broker, check_subscriptions, check_ingest, check_hub,
    check_enrolment, check_outbox, check_audio, check_services, check_clock, check_certificates,
    check_update,
]


def run_checks(settings: Settings) -> list[Check]:
    # Next to `posko up` (no [mqtt] username): log in to its broker as the dev unit.
    settings = with_dev_login(settings, settings.posko.unit_id)
    results: list[Check] = []
    for check in CHECKS:
        try:
            got = check(settings)
        except Exception as exc:  # a check that breaks is itself a finding
            got = Check(check.__name__.removeprefix("check_"), FAIL, f"check failed: {exc}")
        results.extend(got if isinstance(got, tuple) else (got,))
    return results


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the table.")
def doctor(as_json: bool) -> None:
    """Check configuration, disk, local broker, bridge, hub, enrolment, outbox and sound."""
    settings = load_settings()
    results = run_checks(settings)
    worst = FAIL if any(r.status == FAIL for r in results) else (
        WARN if any(r.status == WARN for r in results) else OK)
    if as_json:
        click.echo(json.dumps({"version": __version__, "unit": settings.posko.unit_id,
                               "status": worst, "checks": [asdict(r) for r in results]}))
    else:
        marks = {OK: "ok  ", WARN: "WARN", FAIL: "FAIL"}
        click.echo(f"posko {__version__} on unit {settings.posko.unit_id}")
        for r in results:
            click.echo(f"[{marks[r.status]}] {r.name:<10} {r.detail}")
            if r.fix and r.status != OK:
                click.echo(f"{'':17}→ {r.fix}")
    raise SystemExit(1 if worst == FAIL else 0)
