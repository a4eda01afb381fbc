"""talkgroups: talk groups and their members (push-to-talk)

Revision ID: 0101_talkgroups
Revises: 0001_hub_initial
Create Date: 2026-11-27

Once on a branch of its own; `hub.migrate.upgrade` folds a database stamped on both
branches into this one line.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0101_talkgroups"
down_revision = "0001_hub_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "talk_groups",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "talk_group_members",
        sa.Column("group_id", sa.String(64), sa.ForeignKey("talk_groups.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("unit_id", sa.String(64), primary_key=True),
        sa.Column("added_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("talk_group_members")
    op.drop_table("talk_groups")
