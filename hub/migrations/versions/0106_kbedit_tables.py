"""kbedit: the knowledge base edited on the hub (entries, reviewed changes, publications),
unanswered questions from the kiosks, and the KB version each unit runs

Revision ID: 0106_kbedit_tables
Revises: 0105_alert_repeats
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0106_kbedit_tables"
down_revision = "0105_alert_repeats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_entries",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False, server_default=""),
    )
    op.create_index("ix_kb_entries_topic", "kb_entries", ["topic"])
    op.create_table(
        "kb_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entry_id", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.Column("state", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False, server_default=""),
        sa.Column("reviewed_at", sa.DateTime, nullable=True),
        sa.Column("note", sa.String(500), nullable=False, server_default=""),
        sa.Column("evaluation", sa.JSON, nullable=False),
    )
    op.create_index("ix_kb_changes_entry_id", "kb_changes", ["entry_id"])
    op.create_index("ix_kb_changes_state", "kb_changes", ["state"])
    op.create_table(
        "kb_publications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.String(12), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("entries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("rollback_of", sa.String(12), nullable=False, server_default=""),
    )
    op.create_index("ix_kb_publications_version", "kb_publications", ["version"])
    op.create_table(
        "kb_unanswered",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("question", sa.String(500), nullable=False),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("action", sa.String(16), nullable=False, server_default="fallback"),
        sa.Column("best", sa.String(80), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False, server_default="open"),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("unit_id", "digest", name="uq_kb_unanswered_unit_digest"),
    )
    op.create_index("ix_kb_unanswered_unit_id", "kb_unanswered", ["unit_id"])
    op.create_index("ix_kb_unanswered_day", "kb_unanswered", ["day"])
    op.create_index("ix_kb_unanswered_state", "kb_unanswered", ["state"])
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("kb_version", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.drop_column("kb_version")
    op.drop_table("kb_unanswered")
    op.drop_table("kb_publications")
    op.drop_table("kb_changes")
    op.drop_table("kb_entries")
