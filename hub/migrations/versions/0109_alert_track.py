"""alert_track: a phone's positions while its emergency is open (issue 18)

Revision ID: 0109_alert_track
Revises: 0108_alert_location
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0109_alert_track"
down_revision = "0108_alert_location"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_track",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alert_id", sa.String(64), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("accuracy_m", sa.Float, nullable=False),
        sa.Column("fix_at", sa.DateTime, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_alert_track_alert_id", "alert_track", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_track_alert_id", table_name="alert_track")
    op.drop_table("alert_track")
