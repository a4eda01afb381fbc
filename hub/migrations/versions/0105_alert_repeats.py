"""alert_repeats: alerts counted on another one (flood collapsing)

Revision ID: 0105_alert_repeats
Revises: 0201_unit_update_state
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0105_alert_repeats"
down_revision = "0201_unit_update_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_repeats",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("alert_id", sa.String(64), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_alert_repeats_alert_id", "alert_repeats", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_repeats_alert_id", table_name="alert_repeats")
    op.drop_table("alert_repeats")
