"""phone members: community members and officers enrolled on a phone by QR (issue 18)

Revision ID: 0107_phone_members
Revises: 0106_kbedit_tables
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0107_phone_members"
down_revision = "0106_kbedit_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phone_members",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("groups", sa.String(1024), nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("enrol_token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("enrol_until", sa.DateTime, nullable=True),
        sa.Column("enrolled_at", sa.DateTime, nullable=True),
        sa.Column("password_line", sa.Text, nullable=True),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("phone_members")
