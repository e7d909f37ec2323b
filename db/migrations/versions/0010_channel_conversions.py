"""The wallets' own conversions: what Alipay or WeChat Pay reported the Chinese buyer
paid (or was given back) in CNY for an order priced in a foreign currency, and its rate.

A new, empty table `channel_conversions` (one row per paid payment attempt and per
refund of such an order). No existing row changes; orders paid before keep no record of
the CNY (the channels' answers were not kept). Downgrade drops the table.

Revision ID: 0010_channel_conversions
Revises: 0009_cross_border
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0010_channel_conversions"
down_revision: str | None = "0009_cross_border"
branch_labels: str | None = None
depends_on: str | None = None


def _text(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, AutoString(), nullable=nullable)


def _money(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "channel_conversions",
        _text("id"),
        _text("order_id"),
        _text("kind"),
        _text("refund_id", nullable=True),
        _text("channel"),
        _text("price_currency"),
        _money("price_amount"),
        _text("payer_currency"),
        _money("payer_amount"),
        _text("channel_rate"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_channel_conversions_order"),
        sa.CheckConstraint("kind IN ('payment', 'refund')", name="ck_channel_conversions_kind"),
        sa.CheckConstraint(
            "price_amount > 0 AND payer_amount > 0", name="ck_channel_conversions_amounts"
        ),
        sa.CheckConstraint(
            "price_currency <> payer_currency", name="ck_channel_conversions_currencies"
        ),
    )
    op.create_index("ix_channel_conversions_order_id", "channel_conversions", ["order_id"])
    op.create_index(
        "ix_channel_conversions_time_channel", "channel_conversions", ["created_at", "channel"]
    )


def downgrade() -> None:
    op.drop_table("channel_conversions")
