"""The hub's database: one engine per process, one session per request, one declarative Base.

SQLite (the default) runs in WAL mode with `synchronous=FULL` (setting
`hub.sqlite_synchronous`), so a report the hub has answered 201 for survives a power cut;
PostgreSQL is used when `hub.database_url` names it.
Other parts of the hub (e.g. the talk-group blueprint) import `Base` from here for their
own tables and `get_db()` for the request's session.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from flask import Flask, current_app, g, request
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from hub.offload import patched
from posko.files import private_dir, private_file


class Base(DeclarativeBase):
    """Declarative base of every hub table (Alembic migrations describe the same tables)."""


def database_url(settings) -> str:
    """The configured URL, or SQLite under the state dir."""
    if settings.hub.database_url:
        return settings.hub.database_url
    path = settings.state_dir / "hub" / "hub.db"
    private_dir(path.parent)
    return f"sqlite:///{path}"


def make_engine(url: str, synchronous: str = "FULL") -> Engine:
    """An engine with the pragmas and pool settings Posko relies on.

    synchronous: SQLite's fsync policy, "FULL" (default) or "NORMAL".
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError("synchronous must be FULL or NORMAL")
    if url.startswith("sqlite"):
        lock_path = None
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            db_path = Path(url[len("sqlite:///"):])
            # Made 0600 in a 0700 folder before SQLite opens it: SQLite creates the -wal
            # and -shm files with the database file's mode, so they stay private too.
            private_file(db_path, narrow_dir=False)
            lock_path = f"{db_path}.writelock"
            private_file(lock_path, narrow_dir=False)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        # pysqlite defers the write lock to the first write; in WAL mode a transaction that
        # read first then fails at once with "database is locked" when another writer went
        # ahead. Writers (sessions from `writer`) take the lock at BEGIN IMMEDIATE instead,
        # so they queue on busy_timeout; readers keep plain BEGIN and never block writers.
        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None

        # SQLite's own busy handler sleeps up to 100 ms between retries, so queued writers
        # idle while the lock is free. An flock on a side file wakes the next writer (in any
        # worker process) the moment the previous one has committed and returned its connection.
        # Writers of this process queue on a process lock first, then on the flock. Under
        # gevent every greenlet shares one OS thread: a greenlet blocked in flock() while a
        # sibling greenlet holds the flock would stop the whole worker for good. The process
        # lock (gevent-aware once monkey-patched) makes the flock wait only on other processes.
        process_lock = threading.Lock()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            immediate = conn.get_execution_options().get("posko_writer")
            if immediate and lock_path and "posko_lock_fd" not in conn.info:
                process_lock.acquire()
                try:
                    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                    _flock(fd)
                except BaseException:
                    process_lock.release()
                    raise
                conn.info["posko_lock_fd"] = fd
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        @event.listens_for(engine, "checkin")
        def _unlock(_dbapi_conn, record) -> None:
            fd = record.info.pop("posko_lock_fd", None)
            if fd is not None:
                os.close(fd)  # closing the descriptor drops its flock
                process_lock.release()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _flock(fd: int) -> None:
    """Take the write lock's flock. Under gevent a blocking flock() would stop every
    greenlet of the worker while another process writes; there it is polled instead,
    sleeping cooperatively (1 ms, doubling to 10 ms) between tries."""
    if not patched():
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(delay)  # gevent's sleep once patched: the worker keeps serving
            delay = min(delay * 2, 0.01)


class Sessions:
    """A reader and a writer session factory over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reader = sessionmaker(engine, expire_on_commit=False)
        self.writer = sessionmaker(engine.execution_options(posko_writer=True),
                                   expire_on_commit=False)


def init_app(app: Flask, url: str, synchronous: str = "FULL") -> None:
    """Bind an engine to the app and close each request's session at teardown."""
    app.extensions["posko_db"] = Sessions(make_engine(url, synchronous))

    @app.teardown_appcontext
    def _close(_exc) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def get_db() -> Session:
    """The current request's session (created on first use, closed at teardown).

    GET and HEAD requests get a reader; every other method a writer (SQLite: the write
    lock is taken when its transaction begins).
    """
    if "db_session" not in g:
        sessions: Sessions = current_app.extensions["posko_db"]
        read_only = request.method in ("GET", "HEAD")
        g.db_session = (sessions.reader if read_only else sessions.writer)(
            info={"display_tz": current_app.config["POSKO_SETTINGS"].hub.display_tz})
    return g.db_session


def sessions() -> Sessions:
    """The app's session factories (for a separate writer inside a GET, and for streams)."""
    return current_app.extensions["posko_db"]
