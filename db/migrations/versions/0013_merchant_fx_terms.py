"""Two more of a merchant's cross-border terms: the currencies it prices in, and whether
its payouts are credited in its settlement currency.

`merchant_fx_terms.price_currencies` (nullable, comma-separated ISO 4217 codes): NULL, as
every existing row gets, lets the merchant price in any currency, as before.
`merchant_fx_terms.convert_payouts` (NOT NULL, false for every existing row): until an
operator sets it, each payout is paid in its own currency, as before, whatever the
merchant's recorded settlement currency says (it had no effect until this revision, so it
was never checked against the merchant's bank account). Downgrade drops both columns.

Revision ID: 0013_merchant_fx_terms
Revises: 0012_payout_conversions
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0013_merchant_fx_terms"
down_revision: str | None = "0012_payout_conversions"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("merchant_fx_terms") as batch_op:
        batch_op.add_column(sa.Column("price_currencies", AutoString(), nullable=True))
        batch_op.add_column(
            sa.Column("convert_payouts", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("merchant_fx_terms") as batch_op:
        batch_op.drop_column("convert_payouts")
        batch_op.drop_column("price_currencies")
