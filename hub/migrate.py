"""Bring a database to the newest schema with Alembic (one linear history).

The talk-group tables were once on an Alembic branch of their own; a database made then is
stamped with both heads (`0001_hub_initial` and `0101_talkgroups`). Now that
`0101_talkgroups` follows `0001_hub_initial`, the older stamp is dropped before upgrading,
so such a database upgrades like any other.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from hub.db import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_FOLDED = ("0001_hub_initial", "0101_talkgroups")  # (ancestor, descendant) once on two branches


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def fold_branches(url: str) -> bool:
    """Drop the ancestor's stamp of a database stamped on both former branches; True if done."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return False
            stamps = {row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))}
            if not set(_FOLDED) <= stamps:
                return False
            conn.execute(sa.text("DELETE FROM alembic_version WHERE version_num = :v"),
                         {"v": _FOLDED[0]})
            return True
    finally:
        engine.dispose()


def upgrade(url: str) -> None:
    """Apply every pending migration."""
    fold_branches(url)
    command.upgrade(alembic_config(url), "head")
