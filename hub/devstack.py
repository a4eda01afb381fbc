"""The hub's part of `posko up`: migrate, make sure a dev admin exists, serve."""

from __future__ import annotations

import os
import secrets

from argon2 import PasswordHasher
from sqlalchemy import select

from hub.auth import create_user
from hub.db import Sessions, database_url, make_engine
from hub.migrate import upgrade
from hub.models import User
from posko.broker import dev_client_env
from posko.procs import ProcessSpec, python_module_argv

DEV_ADMIN = "admin"


def ensure_dev_admin(settings) -> str:
    """Create the dev admin once; its password is kept (0600) under <state_dir>/hub/."""
    path = settings.state_dir / "hub" / "dev-admin-password"
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(database_url(settings))
    try:
        with Sessions(engine).writer() as db:
            exists = db.scalar(select(User.id).where(User.username == DEV_ADMIN)) is not None
            if exists and path.exists():
                return path.read_text().strip()
            password = secrets.token_urlsafe(12)
            if exists:  # the password file was lost: set a new one

                user = db.scalar(select(User).where(User.username == DEV_ADMIN))
                user.password_hash = PasswordHasher().hash(password)
                db.commit()
            else:
                create_user(db, DEV_ADMIN, password, "admin", "Admin (dev)")
    finally:
        engine.dispose()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    return password


def dev_services(settings) -> list[ProcessSpec]:
    upgrade(database_url(settings))
    password = ensure_dev_admin(settings)
    host = settings.hub.bind
    port = settings.hub.port
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    password_file = settings.state_dir / "hub" / "dev-admin-password"
    env = {**dev_client_env(settings, "hub"),  # the web workers' and the ingest's login
           "POSKO_POSKO_STATE_DIR": str(settings.state_dir)}
    return [ProcessSpec(
        name="hub",
        argv=python_module_argv("hub", "serve", "--no-migrate"),
        env=env,
        ready_port=port, ready_host=shown,
        urls=[("hub", f"http://{shown}:{port}/  (login {DEV_ADMIN} / {password}, kept in {password_file})")],
        ready_timeout_s=30.0,
    )]
