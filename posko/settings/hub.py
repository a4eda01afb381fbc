"""Settings of the central hub (intake API, dashboard, fleet, alerts)."""

from __future__ import annotations

from dataclasses import dataclass

from posko.settings.fields import setting


@dataclass(frozen=True)
class HubSettings:
    """The command center's Flask hub served by gunicorn."""

    bind: str = setting("127.0.0.1", "Address the hub listens on.")
    port: int = setting(18080, "TCP port of the hub.", min=1, max=65535)
    database_url: str = setting("", "SQLAlchemy URL; empty means SQLite at <state_dir>/hub/hub.db. PostgreSQL: postgresql+psycopg://user@host/db")
    secret_key: str = setting("", "Flask session signing key; empty makes and keeps one under the state dir.", secret=True)
    workers: int = setting(2, "gunicorn worker processes.", min=1, max=64)
