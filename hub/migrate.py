"""Bring a database to the newest schema with Alembic (`alembic upgrade heads`).

"heads", plural: optional parts of the hub (talk groups) keep their tables on their own
Alembic branch in the same versions folder.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Apply every pending migration on every branch."""
    command.upgrade(alembic_config(url), "heads")
