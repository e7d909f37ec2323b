"""Pages: merchants' staff sign in with email and password, and browsers of staff and
operators hold server-side sessions (revocable at once: sign-out, password change).

Both tables start empty; no existing row changes. Downgrade drops them (every staff
account and open session with them).

Revision ID: 0005_staff_sessions
Revises: 0004_account_security
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0005_staff_sessions"
down_revision: str | None = "0004_account_security"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "merchant_users",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("merchant_id", AutoString(), nullable=False),
        sa.Column("email", AutoString(), nullable=False),
        sa.Column("password_hash", AutoString(), nullable=False),
        sa.Column("is_owner", sa.Boolean(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_index("ix_merchant_users_merchant_id", "merchant_users", ["merchant_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("subject_id", AutoString(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("csrf_token", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('merchant', 'operator')", name="ck_web_sessions_kind"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_web_sessions_subject_id", "web_sessions", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_subject_id", "web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_merchant_users_merchant_id", "merchant_users")
    op.drop_table("merchant_users")
