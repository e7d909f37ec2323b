"""A partial index of the payouts the bank has not answered (status pending), by currency
and age: the API's state gauges read the oldest of them on every scrape, and a year of
daily payouts of many merchants is millions of rows, nearly all answered. No row
changes; downgrade drops the index.

Revision ID: 0014_pending_payouts_index
Revises: 0013_merchant_fx_terms
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014_pending_payouts_index"
down_revision: str | None = "0013_merchant_fx_terms"
branch_labels: str | None = None
depends_on: str | None = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index(
        "ix_payouts_pending",
        "payouts",
        ["currency", "created_at"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_payouts_pending", table_name="payouts")
