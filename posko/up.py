"""`posko up`: the whole system on one laptop.

Starts a real Mosquitto with a config generated under `<state_dir>/broker/`, then each
part of Posko (hub, arbiter, one simulated kiosk unit), prints where
each one is, and on Ctrl-C or SIGTERM stops everything it started.

A part plugs in through a function `dev_services(settings) -> list[ProcessSpec]` in its
own package (see COMPONENTS); it is called only after the parts before it are ready, so
the kiosk can, for example, enrol itself with the hub that was just started.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType

import click

from posko.broker import (
    BrokerConfig,
    BrokerError,
    MosquittoProcess,
    dev_credentials,
    dev_users,
    make_password_file,
    port_is_free,
    wait_for_port,
)
from posko.config import Settings, load_settings
from posko.errors import PoskoError
from posko.plugins import DEV_SERVICES, load, registered
from posko.procs import Child, ProcessSpec

# Order matters: a part may rely on the parts above it being up. Each is an entry point of
# `posko.dev_services` (posko/plugins.py), owned by its package.
COMPONENTS: list[str] = ["hub", "arbiter", "kiosk", "unit"]
BROKER_ACL = "posko.broker_acl"  # entry point group: the ACL generator (gateway.acl:dev_acl)


class UpError(PoskoError, RuntimeError):
    """The dev stack could not start."""


class _Stop(Exception):
    """Raised from the signal handler to unwind into the shutdown path."""


def _load_component(name: str):
    """The part's dev_services function; None when this installation does not register it."""
    ep = registered(DEV_SERVICES).get(name)
    return load(ep) if ep is not None else None


@click.command("up")
@click.option("--only", multiple=True, metavar="PART",
              help="Start only these parts besides the broker (hub, arbiter, kiosk, unit).")
@click.option("--exit-after", type=float, default=0.0, hidden=True,
              help="Stop by itself after this many seconds (for scripted checks).")
def up(only: tuple[str, ...], exit_after: float) -> None:
    """Run the broker and every built part of Posko until Ctrl-C."""
    settings = load_settings()
    run_stack(settings, only=set(only), exit_after=exit_after)


def run_stack(settings: Settings, only: set[str] | None = None, exit_after: float = 0.0) -> None:
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    log_dir = state / "logs"
    children: list[Child] = []
    broker: MosquittoProcess | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop(signal.Signals(signum).name)

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    out = click.echo
    try:
        broker_cfg = _broker_config(settings)
        if not port_is_free(broker_cfg.port, broker_cfg.bind):
            raise UpError(
                f"port {broker_cfg.port} ({broker_cfg.bind}) is already in use; stop what holds it "
                "or choose another with [broker] port / POSKO_BROKER_PORT"
            )
        if settings.broker.websockets_port and not port_is_free(settings.broker.websockets_port, broker_cfg.bind):
            raise UpError(f"port {settings.broker.websockets_port} ([broker] websockets_port) is already in use")
        try:
            broker = MosquittoProcess(broker_cfg, binary=settings.broker.binary,
                                      log_path=log_dir / "mosquitto.log")
            log_dir.mkdir(parents=True, exist_ok=True)
            broker.start()
        except BrokerError as exc:
            raise UpError(str(exc)) from None
        out(f"broker   mqtt://{broker_cfg.bind}:{broker_cfg.port}  (mosquitto pid {broker.proc.pid}, config {broker.conf_path})")
        if broker_cfg.websockets_port:
            out(f"broker   ws://{broker_cfg.bind}:{broker_cfg.websockets_port}  (WebSocket listener)")
        watch = dev_users(settings.posko.unit_id)["watch"]
        watch_pw = dev_credentials(state)[watch]
        shown = "127.0.0.1" if broker_cfg.bind in ("0.0.0.0", "") else broker_cfg.bind
        out(f"broker   no anonymous clients; logins in {broker_cfg.state_dir / 'users.json'}. Watch (read-only): "
            f"mosquitto_sub -h {shown} -p {broker_cfg.port} -u {watch} -P {watch_pw} "
            f"-t '{settings.mqtt.topic_root}/#' -v")

        for name in COMPONENTS:
            if only and name not in only:
                continue
            factory = _load_component(name)
            if factory is None:
                raise UpError(f"{name}: not registered in this installation (reinstall: ./setup.sh dev)")
            for spec in factory(settings):
                children.append(_start(spec, log_dir, out))

        out(f"state    {state}  (logs in {log_dir})")
        out("Posko is running. Press Ctrl-C to stop.")
        sys.stdout.flush()
        started = time.monotonic()
        while True:
            for child in children:
                if not child.alive():
                    raise UpError(
                        f"{child.spec.name} stopped unexpectedly (exit {child.proc.returncode}); "
                        f"last lines of {child.log_path}:\n{child.log_tail()}"
                    )
            if broker.proc.poll() is not None:
                raise UpError(f"mosquitto stopped unexpectedly; log: {broker.log_tail()}")
            if exit_after and time.monotonic() - started >= exit_after:
                break
            time.sleep(0.2)
    except _Stop as why:
        out(f"\nstopping ({why}) ...")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):
            child.stop()
        if broker is not None:
            broker.stop()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    out("stopped.")


def _broker_config(settings: Settings) -> BrokerConfig:
    """The dev broker as a deployment runs it: no anonymous clients, a password per dev-stack
    client (kept in <state_dir>/broker/users.json) and the ACL a deployment generates."""
    folder = settings.state_dir / "broker"
    users = dev_users(settings.posko.unit_id)
    credentials = dev_credentials(settings.state_dir, users.values())
    ep = registered(BROKER_ACL).get("dev")
    if ep is None:
        raise UpError("the broker's ACL generator is not registered (reinstall: ./setup.sh dev)")
    acl = folder / "acl"
    acl.write_text(load(ep)(settings))
    acl.chmod(0o600)
    try:
        password_file = make_password_file(folder / "passwd", {u: credentials[u] for u in users.values()})
    except BrokerError as exc:
        raise UpError(str(exc)) from None
    return BrokerConfig(
        state_dir=folder, port=settings.broker.port, bind=settings.broker.bind,
        websockets_port=settings.broker.websockets_port,
        password_file=password_file, acl_file=acl, allow_anonymous=False)


def _start(spec: ProcessSpec, log_dir, out) -> Child:
    if spec.ready_port and not port_is_free(spec.ready_port, spec.ready_host):
        raise UpError(f"{spec.name}: port {spec.ready_port} is already in use")
    child = Child(spec, log_dir)
    if spec.ready_port:
        try:
            wait_for_port(spec.ready_port, spec.ready_host, spec.ready_timeout_s, child.proc)
        except BrokerError as exc:
            tail = child.log_tail()
            child.stop()
            raise UpError(f"{spec.name} did not start: {exc}\n{tail}") from None
    for label, url in spec.urls:
        out(f"{label:<8} {url}")
    if not spec.urls:
        out(f"{spec.name:<8} running (pid {child.pid}, log {child.log_path})")
    return child
