"""An index of a channel-day's paid payments, holding the columns the reconciliation's one
pass reads of them (`ix_payments_paid_day`, partial: paid only). Without it a day's
reconciliation read every payment the channel ever had (SQLite, through the channel's
unique key) or the whole table (PostgreSQL), so its time grew with the years kept; now a
day is a range of the index. No row changes; downgrade drops the index.

Revision ID: 0015_paid_day_index
Revises: 0014_pending_payouts_index
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015_paid_day_index"
down_revision: str | None = "0014_pending_payouts_index"
branch_labels: str | None = None
depends_on: str | None = None

_PAID = sa.text("status = 'paid'")
_COLUMNS = ["channel", "paid_at", "attempt", "order_id", "amount", "currency"]


def upgrade() -> None:
    op.create_index(
        "ix_payments_paid_day", "payments", _COLUMNS, sqlite_where=_PAID, postgresql_where=_PAID
    )


def downgrade() -> None:
    op.drop_index("ix_payments_paid_day", table_name="payments")
