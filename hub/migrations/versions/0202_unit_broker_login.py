"""unit broker login: each unit's login at the central broker, made by the hub (issue 17)

Revision ID: 0202_unit_broker_login
Revises: 0109_alert_track
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0202_unit_broker_login"
down_revision = "0109_alert_track"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("broker_password_line", sa.Text, nullable=True))
        batch.add_column(sa.Column("broker_login_id", sa.String(16), nullable=True))
        batch.add_column(sa.Column("broker_login_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.drop_column("broker_login_at")
        batch.drop_column("broker_login_id")
        batch.drop_column("broker_password_line")
