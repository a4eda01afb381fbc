"""Hub fixtures: a database per backend (SQLite, and PostgreSQL when a server is there) and
one running `posko hub serve` per backend for the whole session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.hub.support import HubProcess
from tests.support.postgres import fresh_database


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh PostgreSQL database for this session (dropped after); SKIP when no server."""
    with fresh_database("posko_hub", "PostgreSQL variants skipped") as url:
        yield url


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
