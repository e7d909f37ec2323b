"""Channel sweeps as posted: one row per transfer a channel made into our bank for one of
its business days, beside its CHANNEL_SWEEP entry, so that reconciliation can match a
bill's sweep lines against our sweeps of the same channel-day.

A new, empty table: `channel_sweeps`. Transfers posted before it are not listed (their
entries do not say which day they settled); no existing row changes. Downgrade drops it.

Revision ID: 0011_channel_sweeps
Revises: 0010_channel_conversions
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0011_channel_sweeps"
down_revision: str | None = "0010_channel_conversions"
branch_labels: str | None = None
depends_on: str | None = None


def _money(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.BigInteger(), nullable=False)


def _text(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, AutoString(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "channel_sweeps",
        _text("transfer_id"),
        _text("channel"),
        _text("day"),
        _text("currency"),
        _money("gross"),
        _money("fees"),
        _money("refunds"),
        _money("net"),
        sa.Column("entry_id", AutoString(), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("transfer_id"),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name="fk_channel_sweeps_entry"
        ),
    )
    op.create_index("ix_channel_sweeps_channel_day", "channel_sweeps", ["channel", "day"])


def downgrade() -> None:
    op.drop_table("channel_sweeps")
