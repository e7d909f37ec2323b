"""Hosted checkout: an order may name where the checkout sends the buyer back.

A nullable column; existing orders get NULL (no link back). The checkout's link
needs no column: its token is derived from the order id (domain.checkout). An order
placed without a channel stores "" as its channel until the buyer chooses one, which
the existing NOT NULL column already holds. Downgrade drops the column.

Revision ID: 0006_checkout_return_url
Revises: 0005_staff_sessions
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0006_checkout_return_url"
down_revision: str | None = "0005_staff_sessions"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("return_url", AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("return_url")
