"""Payment attempts: a payments row per (order, attempt), no longer one per order.

A modification used to overwrite the order's payment row with its next attempt; from
now on it closes the earlier attempt's row and adds one. Existing rows keep their
attempt number: an order modified before this revision keeps only its last attempt
(the earlier ones were overwritten then and cannot be brought back).

Downgrade: the baseline holds one row per order, so each order keeps only its latest
attempt and the earlier ones are deleted.

Revision ID: 0002_payment_attempts
Revises: 0001_baseline
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_payment_attempts"
down_revision: str | None = "0001_baseline"
branch_labels: str | None = None
depends_on: str | None = None

# PostgreSQL's own name for the baseline's key; given to the new key on both databases.
_KEY = "payments_pkey"


def upgrade() -> None:
    _set_key(["order_id", "attempt"])


def downgrade() -> None:
    op.execute(
        "DELETE FROM payments WHERE attempt < "
        "(SELECT max(later.attempt) FROM payments later WHERE later.order_id = payments.order_id)"
    )
    _set_key(["order_id"])


def _set_key(columns: list[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # Rebuilt from the table as it is, with the new key: the columns' own primary key
        # flags must agree with it, which batch_op.create_primary_key does not see to.
        payments = sa.Table("payments", sa.MetaData(), autoload_with=bind)
        for column in payments.c:
            column.primary_key = column.name in columns
        payments.append_constraint(sa.PrimaryKeyConstraint(*columns, name=_KEY))
        with op.batch_alter_table("payments", copy_from=payments, recreate="always"):
            pass
        return
    op.drop_constraint(_KEY, "payments", type_="primary")
    op.create_primary_key(_KEY, "payments", columns)
