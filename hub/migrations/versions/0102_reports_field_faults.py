"""reports: what the field does to reports (implausible times, blocked numbers kept and
marked, a quarantine for refused bodies, a second machine on one unit id)

Revision ID: 0102_reports_field_faults
Revises: 0101_talkgroups
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0102_reports_field_faults"
down_revision = "0101_talkgroups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("time_suspect", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("phone_blocked", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("previous_token_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("duplicate_seen_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("duplicate_count", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_units_previous_token_hash", "units", ["previous_token_hash"])
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("report_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("first_at", sa.DateTime, nullable=False),
        sa.Column("last_at", sa.DateTime, nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="1"),
        sa.UniqueConstraint("unit_id", "digest", name="uq_quarantine_unit_digest"),
    )
    op.create_index("ix_quarantine_unit_id", "quarantine", ["unit_id"])


def downgrade() -> None:
    op.drop_index("ix_quarantine_unit_id", "quarantine")
    op.drop_table("quarantine")
    op.drop_index("ix_units_previous_token_hash", "units")
    with op.batch_alter_table("units") as batch:
        batch.drop_column("duplicate_count")
        batch.drop_column("duplicate_seen_at")
        batch.drop_column("previous_token_hash")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("phone_blocked")
        batch.drop_column("time_suspect")
