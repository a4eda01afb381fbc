"""Schema and storage on SQLite and PostgreSQL: migrations match the models; intake rules."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

import hub.models  # noqa: F401
from hub import intake, units
from hub.db import Base, Sessions, make_engine
from hub.migrate import upgrade
from hub.secrets_store import ensure_secrets
from tests.hub.support import report_body

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def migrated(db_url):
    upgrade(db_url)
    upgrade(db_url)  # a second run changes nothing
    engine = make_engine(db_url)
    ensure_secrets(engine)
    yield Sessions(engine)
    engine.dispose()


def test_migrations_match_models(migrated):
    import hub.talkgroups  # noqa: F401 - its tables are on Base too
    with migrated.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert {"reports", "units", "users", "audit", "alerts", "events", "photos"} <= set(inspect(conn).get_table_names())


def test_idempotent_intake_in_storage(migrated):
    with migrated.writer() as db:
        unit_id = f"store-{uuid.uuid4().hex[:8]}"
        code = units.add_unit(db, unit_id, "Posko Uji", 24)
        token = units.enrol(db, unit_id, code)
        assert token and units.enrol(db, unit_id, code) is None  # one time only
        unit = units.unit_for_token(db, token)
        body = report_body()
        assert intake.submit_report(db, unit, body)[0] == 201
        assert intake.submit_report(db, unit, body)[0] == 200
        assert intake.submit_report(db, unit, dict(body, pin="0000"))[0] == 409
        same_ticket = report_body(ticket=body["ticket"])
        status, answer = intake.submit_report(db, unit, same_ticket)
        assert status == 409 and "ticket" in answer["fields"]
        report = db.get(hub.models.Report, body["id"])
        assert report.pin_hash != body["pin"] and len(report.pin_hash) == 64
        assert report.reporter_phone == "+628123456789"
        trail = db.scalars(select(hub.models.AuditEntry)
                           .where(hub.models.AuditEntry.report_id == body["id"])).all()
        assert [e.action for e in trail] == ["diterima"]
