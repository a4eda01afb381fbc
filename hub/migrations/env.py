"""Alembic environment of the hub: the URL comes from `hub.migrate`, never from an ini file."""

from __future__ import annotations

from alembic import context

import hub.auth  # noqa: F401, I001 - officer sessions
import hub.models  # noqa: F401 - registers the hub's tables on Base.metadata
import hub.phone  # noqa: F401 - and the phone members
import hub.talkgroups  # noqa: F401 - and the talk groups' tables
import hub.throttle  # noqa: F401 - rate-limit counters
from hub.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite's batch mode rebuilds a table (copy, drop, rename): with foreign keys on,
            # dropping `reports` while audit rows refer to it fails. Off for the migration
            # (a PRAGMA outside any transaction), and every reference checked after it.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=sqlite)
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            raw = connection.connection.driver_connection
            broken = raw.execute("PRAGMA foreign_key_check").fetchall()
            raw.execute("PRAGMA foreign_keys=ON")
            if broken:
                raise RuntimeError(f"migration left rows that refer to missing ones: {broken[:5]}")
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
