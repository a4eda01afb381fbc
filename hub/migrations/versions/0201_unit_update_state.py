"""unit update state: what a unit's updater reports in its heartbeat (parts.update)

Revision ID: 0201_unit_update_state
Revises: 0104_dashboard_severity_notes
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0201_unit_update_state"
down_revision = "0104_dashboard_severity_notes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("update_state", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("update_detail", sa.String(240), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.drop_column("update_detail")
        batch.drop_column("update_state")
