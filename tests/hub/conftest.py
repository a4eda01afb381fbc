"""Hub fixtures: a database per backend (SQLite, and PostgreSQL when a server is there) and
one running `posko hub serve` per backend for the whole session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.hub.support import HubProcess

PG_ADMIN = os.environ.get("POSKO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_connect():
    import psycopg

    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh PostgreSQL database for this session (dropped after); SKIP when no server."""
    try:
        admin = _pg_connect()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN} ({exc.__class__.__name__}); "
                    "PostgreSQL variants skipped")
    name = f"posko_hub_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def db_url(backend: str, request, tmp_path_factory) -> str:
    if backend == "postgresql":
        return request.getfixturevalue("pg_server")
    return f"sqlite:///{tmp_path_factory.mktemp('hubdb') / 'hub.db'}"


_HUBS: dict[str, HubProcess] = {}


@pytest.fixture(scope="session")
def hub_server(db_url: str, backend: str, broker, tmp_path_factory) -> Iterator[HubProcess]:
    """`posko hub serve` (2 gunicorn workers + ingest) on this backend, with small limits."""
    hub = HubProcess(
        db_url=db_url, state_dir=tmp_path_factory.mktemp(f"hub-{backend}"), mqtt_port=broker.port,
        topic_root=f"test/{uuid.uuid4().hex[:8]}/posko/v1",
        extra_env={"POSKO_HUB_PHOTO_MAX_BYTES": "2000000", "POSKO_HUB_TICKET_FAIL_LIMIT": "5",
                   "POSKO_HUB_ENROL_FAIL_LIMIT": "1000", "POSKO_HUB_PAGE_SIZE": "5"},
    ).start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="session")
def sqlite_hub(broker, tmp_path_factory) -> Iterator[HubProcess]:
    """The SQLite hub the browser tests drive (one per session)."""
    hub = HubProcess(
        db_url=f"sqlite:///{tmp_path_factory.mktemp('hubdb-ui') / 'hub.db'}",
        state_dir=tmp_path_factory.mktemp("hub-ui"), mqtt_port=broker.port,
        topic_root=f"test/{uuid.uuid4().hex[:8]}/posko/v1",
    ).start()
    try:
        yield hub
    finally:
        hub.stop()
