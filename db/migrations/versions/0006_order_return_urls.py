"""Hosted checkout: where an order's checkout sends the buyer back.

A new, empty table (`order_return_urls`, a row only for orders given one); no existing
row changes. The checkout's link needs no column: its token is derived from the order
id (domain.checkout). An order placed without a channel stores "" as its channel until
the buyer chooses one, which the existing NOT NULL column already holds. Downgrade
drops the table (the return URLs of open checkouts with it).

Revision ID: 0006_order_return_urls
Revises: 0005_staff_sessions
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0006_order_return_urls"
down_revision: str | None = "0005_staff_sessions"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "order_return_urls",
        sa.Column("order_id", AutoString(), nullable=False),
        sa.Column("return_url", AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_return_urls_order"),
        sa.PrimaryKeyConstraint("order_id"),
    )


def downgrade() -> None:
    op.drop_table("order_return_urls")
