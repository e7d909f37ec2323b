"""A merchant settled in another currency than its orders': the bank converts the payout.

A new, empty table `payout_conversions`: one row per payout the bank is asked to convert
(made with the payout, for a merchant that opted in, when its settlement currency is not
the payout's), and what the bank credited and at what rate once it says. Its foreign key
names the payout and its currency, so `payouts` gains a unique (id, currency), which its
primary key already implies. No existing row changes: payouts made before were paid in
their own currency. Downgrade drops the table (the bank's reports of conversions with it)
and the unique constraint.

Revision ID: 0012_payout_conversions
Revises: 0011_channel_sweeps
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0012_payout_conversions"
down_revision: str | None = "0011_channel_sweeps"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("payouts") as batch_op:
        batch_op.create_unique_constraint("uq_payouts_id_currency", ["id", "currency"])
    op.create_table(
        "payout_conversions",
        sa.Column("payout_id", AutoString(), nullable=False),
        sa.Column("currency", AutoString(), nullable=False),
        sa.Column("credit_currency", AutoString(), nullable=False),
        sa.Column("credited_amount", sa.BigInteger(), nullable=True),
        sa.Column("credit_rate", AutoString(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("payout_id"),
        sa.ForeignKeyConstraint(
            ["payout_id", "currency"],
            ["payouts.id", "payouts.currency"],
            name="fk_payout_conversions_payout",
        ),
        sa.CheckConstraint("credit_currency <> currency", name="ck_payout_conversions_currencies"),
        sa.CheckConstraint(
            "(credited_amount IS NULL AND credit_rate IS NULL)"
            " OR (credited_amount > 0 AND credit_rate IS NOT NULL)",
            name="ck_payout_conversions_credited",
        ),
    )


def downgrade() -> None:
    op.drop_table("payout_conversions")
    with op.batch_alter_table("payouts") as batch_op:
        batch_op.drop_constraint("uq_payouts_id_currency", type_="unique")
