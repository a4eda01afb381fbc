"""hubsec: revocable officer sessions and atomic rate-limit counters

Revision ID: 0103_hubsec
Revises: 0102_reports_field_faults
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0103_hubsec"
down_revision = "0102_reports_field_faults"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "throttle_counters",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("window_start", sa.DateTime, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("last_at", sa.DateTime, nullable=True, index=True),
    )


def downgrade() -> None:
    op.drop_table("throttle_counters")
    op.drop_table("user_sessions")
