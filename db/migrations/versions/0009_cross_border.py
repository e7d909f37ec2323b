"""Cross-border orders: merchants' FX terms, quotes, refunds in the buyer's currency,
realised FX differences.

New, empty tables: `merchant_fx_terms` (a merchant's markup in basis points and the
buyer countries it sells to; a merchant without a row has no markup and sells anywhere,
so every existing merchant keeps trading as before), `order_quotes` (one
locked quote per order paid in another currency), `quoted_refunds` (what a refund of such
an order returns in the buyer's currency) and `fx_realisations` (the channel's
conversions of those orders' money, and the gain or loss booked). No existing row
changes. Downgrade drops the tables and columns (with any cross-border data).

Revision ID: 0009_cross_border
Revises: 0008_reconciliation
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0009_cross_border"
down_revision: str | None = "0008_reconciliation"
branch_labels: str | None = None
depends_on: str | None = None

MAX_MARKUP_BPS = 1_000  # domain.fx.quotes.MAX_MARKUP_BPS when this revision was written


def _money(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.BigInteger(), nullable=False)


def _text(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, AutoString(), nullable=False)


def _time(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, UTCDateTime(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "merchant_fx_terms",
        _text("merchant_id"),
        sa.Column("fx_markup_bps", sa.Integer(), nullable=False),
        sa.Column("buyer_countries", AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("merchant_id"),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name="fk_merchant_fx_terms_merchant"
        ),
        sa.CheckConstraint(
            f"fx_markup_bps >= 0 AND fx_markup_bps <= {MAX_MARKUP_BPS}",
            name="ck_merchant_fx_terms_markup",
        ),
    )
    op.create_table(
        "order_quotes",
        _text("id"),
        _text("order_id"),
        _text("price_currency"),
        _money("price_amount"),
        _text("presentment_currency"),
        _money("presentment_amount"),
        _text("mid_rate"),
        _text("customer_rate"),
        sa.Column("markup_bps", sa.Integer(), nullable=False),
        _money("markup_amount"),
        _text("mid_residual"),
        _text("rate_source"),
        _time("rate_as_of"),
        _time("created_at"),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", name="uq_order_quotes_order"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_quotes_order"),
        sa.CheckConstraint(
            "price_amount > 0 AND presentment_amount > 0 AND markup_amount >= 0"
            " AND markup_amount < presentment_amount",
            name="ck_order_quotes_amounts",
        ),
        sa.CheckConstraint(
            f"markup_bps >= 0 AND markup_bps <= {MAX_MARKUP_BPS}", name="ck_order_quotes_markup"
        ),
        sa.CheckConstraint(
            "price_currency <> presentment_currency", name="ck_order_quotes_currencies"
        ),
        sa.CheckConstraint("expires_at > created_at", name="ck_order_quotes_expiry"),
    )
    op.create_table(
        "quoted_refunds",
        _text("refund_id"),
        _text("quote_id"),
        _text("presentment_currency"),
        _money("presentment_amount"),
        _money("markup_returned"),
        _text("residual"),
        sa.PrimaryKeyConstraint("refund_id"),
        sa.ForeignKeyConstraint(["refund_id"], ["refunds.id"], name="fk_quoted_refunds_refund"),
        sa.ForeignKeyConstraint(["quote_id"], ["order_quotes.id"], name="fk_quoted_refunds_quote"),
        sa.CheckConstraint(
            "presentment_amount > 0 AND markup_returned >= 0"
            " AND markup_returned <= presentment_amount",
            name="ck_quoted_refunds_amounts",
        ),
    )
    op.create_index("ix_quoted_refunds_quote_id", "quoted_refunds", ["quote_id"])
    op.create_table(
        "fx_realisations",
        _text("id"),
        _text("order_id"),
        _text("channel"),
        _text("presentment_currency"),
        _money("presentment_amount"),
        _text("settlement_currency"),
        _money("settled_amount"),
        _money("markup_amount"),
        _money("rounding_amount"),
        _money("gain_loss_amount"),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_fx_realisations_order"),
        sa.CheckConstraint(
            "(presentment_amount > 0 AND settled_amount > 0)"
            " OR (presentment_amount < 0 AND settled_amount < 0)",
            name="ck_fx_realisations_direction",
        ),
    )
    op.create_index("ix_fx_realisations_order_id", "fx_realisations", ["order_id"])
    op.create_index("ix_fx_realisations_time_channel", "fx_realisations", ["created_at", "channel"])


def downgrade() -> None:
    op.drop_table("fx_realisations")
    op.drop_table("quoted_refunds")
    op.drop_table("order_quotes")
    op.drop_table("merchant_fx_terms")
