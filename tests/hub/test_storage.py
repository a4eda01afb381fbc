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


def test_a_refused_body_with_nul_characters_is_quarantined_on_both_databases(migrated):
    """PostgreSQL's text and JSON refuse NUL; the officer's copy keeps it visible as \\u0000
    (schemathesis found a 500 here)."""
    from hub.models import Quarantine

    unit_id = f"nul-{uuid.uuid4().hex[:8]}"
    parsed = b'{"id": "abc\\u0000def", "description": "a\\u0000b", "pin": "1234"}'  # JSON escapes
    raw = b'{"description": "a\x00b"}\x00'  # raw NULs: not even JSON
    with migrated.writer() as db:
        intake.quarantine(db, unit_id, parsed, {"description\x00": "control character \x00"})
        intake.quarantine(db, unit_id, raw, {"body": "not JSON"})
    with migrated.reader() as db:
        rows = {r.digest: r for r in db.scalars(select(Quarantine).where(Quarantine.unit_id == unit_id))}
    assert len(rows) == 2
    for row in rows.values():
        assert "\x00" not in row.body and "\\u0000" in row.body
        assert all("\x00" not in k + v for k, v in row.errors.items())
    first = next(r for r in rows.values() if r.report_id)
    assert first.report_id == "abc\\u0000def" and "1234" not in first.body  # the PIN is masked
