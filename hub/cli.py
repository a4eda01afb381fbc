"""`posko hub …`: serve, migrate, kb-publish, units, users (and the ingest process `serve` starts)."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import click
from gunicorn.app.base import BaseApplication
from sqlalchemy import select
from sqlalchemy.engine import make_url

from assistant.errors import KbError
from hub import kb, releases, unit_logins
from hub.app import create_app
from hub.auth import UserError, create_user
from hub.db import Sessions, database_url, make_engine
from hub.ingest import run as run_ingest
from hub.migrate import upgrade
from hub.models import User
from hub.offload import configure
from hub.secrets_store import ensure_secrets, secret_key_file
from hub.units import UnitError, add_unit, list_units, revoke, rotate
from hub.users import reset_password, set_active
from posko.broker import with_dev_login
from posko.config import load_settings
from posko.files import private_dir, private_umask
from posko.mqtt import MqttLink
from posko.procs import _die_with_parent, python_module_argv


def _session(settings):
    return Sessions(make_engine(database_url(settings))).writer()


@click.group("hub")
def hub() -> None:
    """The command center's hub: serve, migrate, kb-publish, units, users."""


@hub.command("migrate")
def migrate() -> None:
    """Create or upgrade the hub's database (alembic upgrade head)."""
    settings = load_settings()
    url = database_url(settings)
    upgrade(url)
    click.echo(f"database is up to date ({_masked(url)})")


def _masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@hub.command("serve")
@click.option("--workers", type=int, default=None, help="gunicorn workers (default: [hub] workers).")
@click.option("--bind", default=None, help="host:port (default: [hub] bind and port).")
@click.option("--no-migrate", is_flag=True, help="Do not upgrade the database first.")
@click.option("--no-ingest", is_flag=True, help="Do not run the MQTT ingest process.")
def serve(workers: int | None, bind: str | None, no_migrate: bool, no_ingest: bool) -> None:
    """Serve the hub with gunicorn (plus its one MQTT ingest process)."""

    private_umask()  # everything the hub and its children make is 0600 / 0700
    settings = load_settings()
    private_dir(settings.state_dir / "hub")
    if not no_migrate:
        upgrade(database_url(settings))
    engine = make_engine(database_url(settings))
    ensure_secrets(engine)  # once, before the workers start
    engine.dispose()
    if not settings.hub.secret_key:  # made before the fork so every worker reads the same key
        secret_key_file(settings.state_dir / "hub" / "secret-key")
    address = bind or f"{settings.hub.bind}:{settings.hub.port}"
    options = {
        "bind": address, "workers": workers or settings.hub.workers,
        # gevent: one greenlet per connection. With gthread every connection that sends
        # its headers slowly held a thread, so ~64 slow clients (or ~35 live-stream tabs)
        # stopped intake; here 500 slow clients and 50 streams cost greenlets only. CPU-heavy
        # steps (photo decoding, argon2) run on the worker's real thread pool (hub.offload).
        "worker_class": "gevent", "worker_connections": settings.hub.worker_connections,
        "timeout": 60, "graceful_timeout": 5, "keepalive": 5,
        "accesslog": None, "errorlog": "-", "loglevel": settings.posko.log_level.lower(),
        "proc_name": "posko-hub", "control_socket_disable": True,
    }

    class HubApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            configure(settings.hub.threads)
            return create_app()

    ingest = None
    if settings.hub.mqtt_ingest and not no_ingest:
        ingest = IngestSupervisor().start()
    click.echo(f"hub serving on http://{address}/ ({options['workers']} workers)", err=True)
    try:
        HubApplication().run()
    finally:
        if ingest is not None:
            ingest.stop()


class IngestSupervisor:
    """Keeps the one `posko hub ingest` child running beside gunicorn; restarts it if it dies.

    The child gets PR_SET_PDEATHSIG, so it also ends if this process is killed outright.
    """

    def __init__(self, restart_delay_s: float = 2.0) -> None:
        self.restart_delay_s = restart_delay_s
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="ingest-supervisor", daemon=True)

    def _spawn(self) -> None:
        # Its own session: a SIGTERM to our process group (Ctrl-C, `posko up` stopping) reaches
        # gunicorn, whose exit then stops the child here, instead of looking like a crash.
        self.proc = subprocess.Popen(python_module_argv("hub", "ingest"),
                                     preexec_fn=_die_with_parent, start_new_session=True)

    def start(self) -> IngestSupervisor:
        self._spawn()
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            # gunicorn's master may reap the child itself; poll() then reports it gone too.
            if self.proc is not None and self.proc.poll() is not None:
                click.echo(f"hub: MQTT ingest exited ({self.proc.returncode}); restarting", err=True)
                if self._stop.wait(self.restart_delay_s):
                    return
                self.restarts += 1
                self._spawn()

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@hub.command("ingest", hidden=True)
def ingest_cmd() -> None:
    """Run only the MQTT ingest (heartbeats, alerts); `serve` starts it by itself."""
    run_ingest(load_settings())


@hub.command("kb-publish")
@click.argument("kb_dir", required=False, type=click.Path(file_okay=False))
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the broker.")
def kb_publish(kb_dir: str | None, timeout_s: float) -> None:
    """Check a knowledge-base folder, store it as a bundle and announce it to the units.

    KB_DIR defaults to [assistant] kb_dir, else the knowledge base shipped with Posko.
    Exit 2 when the folder is not a valid knowledge base (nothing is published).
    """
    settings = load_settings()
    folder = kb.kb_dir_of(settings, kb_dir)
    try:
        current = kb.publish_dir(settings, folder)
    except KbError as exc:
        first = exc.problems[0] if exc.problems else str(exc)
        more = f" (and {len(exc.problems) - 1} more; list them with: python -m assistant.kb {folder})" \
            if len(exc.problems) > 1 else ""
        click.echo(f"error: knowledge base NOT published, {folder} is not valid: {first}{more}", err=True)
        sys.exit(2)
    click.echo(f"knowledge base {current.version} stored (sha256 {current.sha256})")
    for line in kb.expired_in(folder):
        click.echo(f"warning: {line} has passed; units answer it as past information", err=True)
    link = MqttLink(with_dev_login(settings, "hub").mqtt, client_id=f"posko-kb-publish-{uuid.uuid4().hex[:8]}").start()
    try:
        if not link.wait_connected(timeout_s):
            click.echo(f"warning: broker {settings.mqtt.host}:{settings.mqtt.port} not reachable; "
                       "the hub announces the new bundle when its MQTT link is up", err=True)
            sys.exit(1)
        info = kb.announce(link, settings, current)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            click.echo("warning: the broker did not confirm kb/current; the hub announces it again "
                       "when its MQTT link is up", err=True)
            sys.exit(1)
    finally:
        link.stop()
    click.echo(f"announced on {settings.mqtt.topic_root}/kb/current")


@hub.command("release-publish")
@click.argument("wheel", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the broker.")
def release_publish(wheel: Path, timeout_s: float) -> None:
    """Store a Posko wheel as the current release and announce it on release/current.

    Units download it in the background, install it beside the running release, switch, check
    their health and roll back by themselves if the check fails (docs/install.md). Exit 2 when
    the file is not a Posko wheel (nothing is published).
    """
    settings = load_settings()
    try:
        current = releases.publish(settings, wheel)
    except releases.ReleaseError as exc:
        click.echo(f"error: release NOT published: {exc}", err=True)
        sys.exit(2)
    click.echo(f"release {current.version} stored (sha256 {current.sha256}, {current.size} bytes)")
    link = MqttLink(with_dev_login(settings, "hub").mqtt, client_id=f"posko-release-publish-{uuid.uuid4().hex[:8]}").start()
    try:
        if not link.wait_connected(timeout_s):
            click.echo(f"warning: broker {settings.mqtt.host}:{settings.mqtt.port} not reachable; "
                       "the hub's ingest announces the release when its MQTT link is up", err=True)
            sys.exit(1)
        info = releases.announce(link, settings, current)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            click.echo("warning: the broker did not confirm release/current", err=True)
            sys.exit(1)
    finally:
        link.stop()
    click.echo(f"announced on {settings.mqtt.topic_root}/release/current")


@hub.group("units")
def units_group() -> None:
    """Add, list, revoke and rotate units."""


@units_group.command("add")
@click.argument("unit_id")
@click.option("--name", default="", help="Human name, e.g. 'Posko Alun-alun'.")
def units_add(unit_id: str, name: str) -> None:
    """Add a unit; prints its one-time enrolment code alone on the last line."""
    settings = load_settings()
    with _session(settings) as db:
        code = add_unit(db, unit_id, name, settings.hub.enrol_code_valid_h)
    click.echo(f"unit {unit_id} added; enrol it within {settings.hub.enrol_code_valid_h} h with:")
    click.echo(f"  posko enroll --hub URL --code {code}")
    click.echo(code)


@units_group.command("rotate")
@click.argument("unit_id")
def units_rotate(unit_id: str) -> None:
    """New one-time code; the unit's token is replaced when it enrols with it."""
    settings = load_settings()
    with _session(settings) as db:
        code = rotate(db, unit_id, settings.hub.enrol_code_valid_h)
    click.echo(f"unit {unit_id}: new enrolment code (valid {settings.hub.enrol_code_valid_h} h):")
    click.echo(code)


@units_group.command("revoke")
@click.argument("unit_id")
def units_revoke(unit_id: str) -> None:
    """Stop the unit's token and its broker login now."""
    settings = load_settings()
    with _session(settings) as db:
        revoke(db, unit_id)
        click.echo(f"unit {unit_id}: token revoked")
        _resync(db, settings, f"unit {unit_id}: broker login removed")


@units_group.command("rotate-broker")
@click.argument("unit_id")
def units_rotate_broker(unit_id: str) -> None:
    """Change the unit's broker password: the old one stops working now (the central broker
    reloads, it does not restart); the unit fetches its new one over HTTPS with its token."""
    settings = load_settings()
    if not unit_logins.managed(settings):
        raise click.ClickException("this hub does not manage broker logins (ptt.broker_password_file is not set)")
    with _session(settings) as db:
        try:
            unit_logins.drop(db, settings, unit_id)
        except UnitError as exc:
            raise click.ClickException(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"unit {unit_id}: login removed from the hub's data, but the broker's "
                                       f"files could not be written ({exc}); run this again") from None
    click.echo(f"unit {unit_id}: old broker password refused from now on; the unit fetches its new one "
               f"within [unit] broker_login_check_s")


def _resync(db, settings, done: str) -> None:
    try:
        if unit_logins.resync(db, settings):
            click.echo(done)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"the broker's files could not be written ({exc}); the unit's broker "
                                   "login stays valid until they are: run this again") from None


@units_group.command("list")
def units_list() -> None:
    """Every unit with its token state and last heartbeat."""
    with _session(load_settings()) as db:
        rows = list_units(db)
        click.echo(f"{'unit':<24} {'token':<10} {'broker':<7} {'status':<8} {'last seen (UTC)':<20} version")
        for u in rows:
            token = "revoked" if u.revoked_at else ("active" if u.token_hash else
                                                    ("code" if u.code_hash else "none"))
            broker = "login" if u.broker_password_line and not u.revoked_at else "none"
            seen = u.last_seen_at.strftime("%Y-%m-%d %H:%M:%S") if u.last_seen_at else "-"
            click.echo(f"{u.id:<24} {token:<10} {broker:<7} {u.status:<8} {seen:<20} {u.version}")


@hub.group("users")
def users_group() -> None:
    """Dashboard accounts."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "supervisor", "kb_editor", "operator"]), required=True)
@click.option("--name", "display_name", default="", help="Name shown on the dashboard.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_add(username: str, role: str, display_name: str, password_stdin: bool) -> None:
    """Create a dashboard user (the first admin too)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session(load_settings()) as db:
        create_user(db, username, password, role, display_name)
    click.echo(f"user {username} ({role}) created")


def _user_or_exit(db, username: str):
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        click.echo(f"error: no user {username}", err=True)
        sys.exit(2)
    return user


@users_group.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def users_passwd(username: str, password_stdin: bool) -> None:
    """Set a user's password; every session of that user ends."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with _session(load_settings()) as db:
        user = _user_or_exit(db, username)
        try:
            ended = reset_password(db, user, password, actor="cli")
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
    click.echo(f"user {username}: password changed, {ended} session(s) ended")


@users_group.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Disable a user's account; every session of that user ends."""
    with _session(load_settings()) as db:
        user = _user_or_exit(db, username)
        try:
            set_active(db, user, False, actor="cli")
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
    click.echo(f"user {username} disabled")


@users_group.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Enable a disabled account again."""
    with _session(load_settings()) as db:
        set_active(db, _user_or_exit(db, username), True, actor="cli")
    click.echo(f"user {username} enabled")


@users_group.command("list")
def users_list() -> None:
    """Every dashboard account with its role and state."""
    with _session(load_settings()) as db:
        click.echo(f"{'user':<24} {'role':<11} {'state':<9} name")
        for u in db.scalars(select(User).order_by(User.username)):
            click.echo(f"{u.username:<24} {u.role:<11} {'active' if u.active else 'disabled':<9} {u.display_name}")


from hub.tiles import _cli as _tiles_cli  # noqa: E402 - `posko hub tiles` (offline map)

hub.add_command(_tiles_cli())
