"""dashboard: report severity, a notes thread per report, posko positions on the map

Revision ID: 0104_dashboard_severity_notes
Revises: 0103_hubsec
Create Date: 2026-12-01

Reports already stored get the severity that intake would give them now (hub.severity), and
notes officers wrote before the thread existed (audit entries "catatan") start the thread.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0104_dashboard_severity_notes"
down_revision = "0103_hubsec"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from hub.severity import assess

    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("severity", sa.String(8), nullable=False, server_default="normal"))
        batch.create_index("ix_reports_severity", ["severity"])
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("lat", sa.Float, nullable=True))
        batch.add_column(sa.Column("lon", sa.Float, nullable=True))
    op.create_table(
        "report_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("report_id", sa.String(36), sa.ForeignKey("reports.id"), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_report_notes_report_id", "report_notes", ["report_id"])
    conn = op.get_bind()
    conn.execute(sa.text(
        "INSERT INTO report_notes (report_id, author, text, at) "
        "SELECT report_id, actor, detail, at FROM audit WHERE action = 'catatan' AND report_id IS NOT NULL "
        "ORDER BY at, id"))
    reports = sa.table("reports", sa.column("id", sa.String), sa.column("category", sa.String),
                       sa.column("description", sa.Text), sa.column("location_text", sa.String),
                       sa.column("severity", sa.String))
    for row in conn.execute(sa.select(reports.c.id, reports.c.category, reports.c.description,
                                      reports.c.location_text)).all():
        level = assess(row.category, row.description, row.location_text)
        if level != "normal":
            conn.execute(reports.update().where(reports.c.id == row.id).values(severity=level))


def downgrade() -> None:
    op.drop_index("ix_report_notes_report_id", "report_notes")
    op.drop_table("report_notes")
    with op.batch_alter_table("units") as batch:
        batch.drop_column("lon")
        batch.drop_column("lat")
    with op.batch_alter_table("reports") as batch:
        batch.drop_index("ix_reports_severity")
        batch.drop_column("severity")
