"""alert cancel: a phone member may call off their own emergency; the alert keeps when
(issue 18)

Revision ID: 0110_alert_cancel
Revises: 0202_unit_broker_login
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0110_alert_cancel"
down_revision = "0202_unit_broker_login"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("cancelled_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("cancelled_at")
