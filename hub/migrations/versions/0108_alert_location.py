"""alert location: a phone's emergency carries its talk group and, when the member allows
it, the phone's location (issue 18)

Revision ID: 0108_alert_location
Revises: 0107_phone_members
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0108_alert_location"
down_revision = "0107_phone_members"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("talk_group", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("lat", sa.Float, nullable=True))
        batch.add_column(sa.Column("lon", sa.Float, nullable=True))
        batch.add_column(sa.Column("accuracy_m", sa.Float, nullable=True))
        batch.add_column(sa.Column("fix_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("no_location", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        for name in ("no_location", "fix_at", "accuracy_m", "lon", "lat", "talk_group"):
            batch.drop_column(name)
