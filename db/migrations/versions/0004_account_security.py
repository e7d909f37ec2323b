"""Account security: access tokens carry the user's token version (a password change
bumps it, refusing every earlier token), registrations wait for their address to be
confirmed, and the messages for people's addresses wait in an outbox.

Existing users keep their rows and get token version 0 (the version tokens issued
before this revision are read as: they lack the claim, and are refused, so everyone
signs in once more after the upgrade). The new tables start empty.

Downgrade drops the tables (pending registrations and unsent messages with them) and
the column.

Revision ID: 0004_account_security
Revises: 0003_constraints
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0004_account_security"
down_revision: str | None = "0003_constraints"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "registrations",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("email", AutoString(), nullable=False),
        sa.Column("password_hash", AutoString(), nullable=False),
        sa.Column("display_name", AutoString(), nullable=False),
        sa.Column("code_hash", AutoString(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    op.create_index("ix_registrations_email", "registrations", ["email"])
    op.create_table(
        "outbound_messages",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("recipient", AutoString(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("subject", AutoString(), nullable=False),
        sa.Column("body", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbound_messages_recipient", "outbound_messages", ["recipient"])


def downgrade() -> None:
    op.drop_index("ix_outbound_messages_recipient", "outbound_messages")
    op.drop_table("outbound_messages")
    op.drop_index("ix_registrations_email", "registrations")
    op.drop_table("registrations")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("token_version")
