"""hub: units, users, reports, photos, audit, blocks, alerts, events, throttle, kv

Revision ID: 0001_hub_initial
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_hub_initial"
down_revision = None
branch_labels = ("hub",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("last_failed_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "units",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=True),
        sa.Column("code_expires_at", sa.DateTime, nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("token_created_at", sa.DateTime, nullable=True),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        sa.Column("last_seen_at", sa.DateTime, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("uptime_s", sa.Float, nullable=False),
        sa.Column("disk_free_mb", sa.Float, nullable=False),
        sa.Column("outbox_pending", sa.Integer, nullable=False),
        sa.Column("outbox_oldest_s", sa.Float, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("talk_group", sa.String(64), nullable=False),
        sa.Column("interval_s", sa.Float, nullable=False),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("unit_id", sa.String(64), sa.ForeignKey("units.id"), nullable=False),
        sa.Column("ticket", sa.String(8), nullable=False, unique=True),
        sa.Column("pin_hash", sa.String(64), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("location_text", sa.String(500), nullable=False),
        sa.Column("lat", sa.Float, nullable=True),
        sa.Column("lon", sa.Float, nullable=True),
        sa.Column("reporter_name", sa.String(200), nullable=False),
        sa.Column("reporter_phone", sa.String(20), nullable=False),
        sa.Column("phone_key", sa.String(64), nullable=True),
        sa.Column("photos", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reject_reason", sa.String(200), nullable=False),
        sa.Column("public_note", sa.String(500), nullable=False),
        sa.Column("assigned_to", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_reports_unit_id", "reports", ["unit_id"])
    op.create_index("ix_reports_category", "reports", ["category"])
    op.create_index("ix_reports_phone_key", "reports", ["phone_key"])
    op.create_index("ix_reports_state", "reports", ["state"])
    op.create_index("ix_reports_received_at", "reports", ["received_at"])
    op.create_table(
        "photos",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("mime", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("report_id", sa.String(36), sa.ForeignKey("reports.id"), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_audit_report_id", "audit", ["report_id"])
    op.create_table(
        "phone_blocks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("phone_key", sa.String(64), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("lifted_at", sa.DateTime, nullable=True),
        sa.Column("lifted_by", sa.String(64), nullable=False),
    )
    op.create_index("ix_phone_blocks_phone_key", "phone_blocks", ["phone_key"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("posko", sa.String(200), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sent_at", sa.DateTime, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("acked_at", sa.DateTime, nullable=True),
        sa.Column("acked_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_alerts_unit_id", "alerts", ["unit_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_table(
        "throttle",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_throttle_key", "throttle", ["key"])
    op.create_index("ix_throttle_at", "throttle", ["at"])
    op.create_table(
        "kv",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("kv", "throttle", "events", "alerts", "phone_blocks", "audit", "photos",
                  "reports", "units", "users"):
        op.drop_table(table)
