"""Baseline: the tables exactly as `create_all` made them before there were migrations.

A database made by that code has no `alembic_version`; db.migrate recognises its tables
and stamps it at this revision instead of creating them again.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0001_baseline"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("owner", AutoString(), nullable=False),
        sa.Column("currency", AutoString(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_accounts_owner"), ["owner"], unique=False)

    op.create_table(
        "channel_notifications",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("channel", AutoString(), nullable=False),
        sa.Column("order_id", AutoString(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("raw_body", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("channel_notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_channel_notifications_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "coupons",
        sa.Column("code", AutoString(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("percent_off", AutoString(), nullable=True),
        sa.Column("amount_off", sa.BigInteger(), nullable=True),
        sa.Column("min_total", sa.BigInteger(), nullable=True),
        sa.Column("currency", AutoString(), nullable=True),
        sa.Column("valid_from", UTCDateTime(), nullable=True),
        sa.Column("valid_until", UTCDateTime(), nullable=True),
        sa.Column("max_redemptions", sa.Integer(), nullable=False),
        sa.Column("per_buyer_limit", sa.Integer(), nullable=True),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", AutoString(), nullable=False),
        sa.Column("request_hash", AutoString(), nullable=False),
        sa.Column("order_id", AutoString(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "journal_entries",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("order_id", AutoString(), nullable=True),
        sa.Column("merchant_id", AutoString(), nullable=True),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("currency", AutoString(), nullable=False),
        sa.Column("reverses_entry_id", AutoString(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_journal_entries_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_journal_entries_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(
            "ix_journal_entries_merchant_time", ["merchant_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_journal_entries_order_id"), ["order_id"], unique=False)

    op.create_table(
        "merchants",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("commission_rate", AutoString(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("settlement_currency", AutoString(), nullable=True),
        sa.Column("bank_account_ciphertext", sa.Text(), nullable=True),
        sa.Column("bank_account_last4", AutoString(), nullable=True),
        sa.Column("webhook_url", AutoString(), nullable=True),
        sa.Column("webhook_secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "party_notifications",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("order_id", AutoString(), nullable=False),
        sa.Column("recipient", AutoString(), nullable=False),
        sa.Column("recipient_id", AutoString(), nullable=True),
        sa.Column("event", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("read_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("party_notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_party_notifications_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_party_notifications_recipient_id"), ["recipient_id"], unique=False
        )

    op.create_table(
        "refunds",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("order_id", AutoString(), nullable=False),
        sa.Column("channel", AutoString(), nullable=False),
        sa.Column("channel_txn_id", AutoString(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", AutoString(), nullable=False),
        sa.Column("reason", AutoString(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("failure_reason", AutoString(), nullable=True),
        sa.Column("requested_by", AutoString(), nullable=False),
        sa.Column("channel_fee_amount", sa.BigInteger(), nullable=False),
        sa.Column("commission_amount", sa.BigInteger(), nullable=False),
        sa.Column("merchant_net_amount", sa.BigInteger(), nullable=False),
        sa.Column("from_available", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_order_id"), ["order_id"], unique=False)

    op.create_table(
        "statements",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("merchant_id", AutoString(), nullable=False),
        sa.Column("day", AutoString(), nullable=False),
        sa.Column("currency", AutoString(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("cutoff", UTCDateTime(), nullable=False),
        sa.Column("opening_balance", sa.BigInteger(), nullable=False),
        sa.Column("gross_amount", sa.BigInteger(), nullable=False),
        sa.Column("channel_fee_amount", sa.BigInteger(), nullable=False),
        sa.Column("commission_amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("returned_amount", sa.BigInteger(), nullable=False),
        sa.Column("clawback_amount", sa.BigInteger(), nullable=False),
        sa.Column("payout_amount", sa.BigInteger(), nullable=False),
        sa.Column("closing_balance", sa.BigInteger(), nullable=False),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_statements_merchant_id"), ["merchant_id"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("email", AutoString(), nullable=False),
        sa.Column("role", AutoString(), nullable=False),
        sa.Column("password_hash", AutoString(), nullable=False),
        sa.Column("display_name", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("merchant_id", AutoString(), nullable=False),
        sa.Column("order_id", AutoString(), nullable=True),
        sa.Column("type", AutoString(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", AutoString(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_events_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_webhook_events_order_id"), ["order_id"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("merchant_id", AutoString(), nullable=False),
        sa.Column("prefix", AutoString(), nullable=False),
        sa.Column("key_hash", AutoString(), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prefix"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_merchant_id"), ["merchant_id"], unique=False)

    op.create_table(
        "coupon_redemptions",
        sa.Column("order_id", AutoString(), nullable=False),
        sa.Column("coupon_code", AutoString(), nullable=False),
        sa.Column("buyer_id", AutoString(), nullable=True),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_code"],
            ["coupons.code"],
        ),
        sa.PrimaryKeyConstraint("order_id"),
    )
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coupon_redemptions_buyer_id"), ["buyer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_coupon_redemptions_coupon_code"), ["coupon_code"], unique=False
        )

    op.create_table(
        "orders",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("merchant_id", AutoString(), nullable=False),
        sa.Column("channel", AutoString(), nullable=False),
        sa.Column("currency", AutoString(), nullable=False),
        sa.Column("description", AutoString(), nullable=False),
        sa.Column("buyer_ref", AutoString(), nullable=True),
        sa.Column("buyer_id", AutoString(), nullable=True),
        sa.Column("total_amount", sa.BigInteger(), nullable=False),
        sa.Column("discount_amount", sa.BigInteger(), nullable=False),
        sa.Column("payable_amount", sa.BigInteger(), nullable=False),
        sa.Column("coupon_code", AutoString(), nullable=True),
        sa.Column("channel_fee_rate", AutoString(), nullable=False),
        sa.Column("commission_rate", AutoString(), nullable=False),
        sa.Column("payment_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("close_reason", AutoString(), nullable=True),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("review_reason", AutoString(), nullable=True),
        sa.Column("channel_fee_amount", sa.BigInteger(), nullable=True),
        sa.Column("commission_amount", sa.BigInteger(), nullable=True),
        sa.Column("merchant_net_amount", sa.BigInteger(), nullable=True),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_fee_amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_commission_amount", sa.BigInteger(), nullable=False),
        sa.Column("refunded_net_amount", sa.BigInteger(), nullable=False),
        sa.Column("funds_released_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_buyer_id"), ["buyer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_merchant_id"), ["merchant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_status"), ["status"], unique=False)

    op.create_table(
        "payouts",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("statement_id", AutoString(), nullable=False),
        sa.Column("merchant_id", AutoString(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", AutoString(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("failure_reason", AutoString(), nullable=True),
        sa.Column("bank_reference", AutoString(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["statements.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payouts_merchant_id"), ["merchant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_payouts_statement_id"), ["statement_id"], unique=False)

    op.create_table(
        "postings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", AutoString(), nullable=False),
        sa.Column("account", AutoString(), nullable=False),
        sa.Column("currency", AutoString(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_postings_account"), ["account"], unique=False)
        batch_op.create_index(batch_op.f("ix_postings_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "refresh_tokens",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("user_id", AutoString(), nullable=False),
        sa.Column("token_hash", AutoString(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refresh_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "refund_lines",
        sa.Column("refund_id", AutoString(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refunds.id"],
        ),
        sa.PrimaryKeyConstraint("refund_id", "line_no"),
    )
    op.create_table(
        "statement_entries",
        sa.Column("entry_id", AutoString(), nullable=False),
        sa.Column("statement_id", AutoString(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["statements.id"],
        ),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    with op.batch_alter_table("statement_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_statement_entries_statement_id"), ["statement_id"], unique=False
        )

    op.create_table(
        "order_lines",
        sa.Column("order_id", AutoString(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", AutoString(), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("line_total", sa.BigInteger(), nullable=False),
        sa.Column("discount_amount", sa.BigInteger(), nullable=False),
        sa.Column("payable_amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.PrimaryKeyConstraint("order_id", "line_no"),
    )
    op.create_table(
        "payments",
        sa.Column("order_id", AutoString(), nullable=False),
        sa.Column("channel", AutoString(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("channel_payment_id", AutoString(), nullable=True),
        sa.Column("checkout_url", AutoString(), nullable=True),
        sa.Column("qr_payload", AutoString(), nullable=True),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("channel_txn_id", AutoString(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", AutoString(), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_table(
        "reviews",
        sa.Column("order_id", AutoString(), nullable=False),
        sa.Column("merchant_id", AutoString(), nullable=False),
        sa.Column("buyer_id", AutoString(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.PrimaryKeyConstraint("order_id"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_buyer_id"), ["buyer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reviews_merchant_id"), ["merchant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_merchant_id"))
        batch_op.drop_index(batch_op.f("ix_reviews_buyer_id"))

    op.drop_table("reviews")
    op.drop_table("payments")
    op.drop_table("order_lines")
    with op.batch_alter_table("statement_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_statement_entries_statement_id"))

    op.drop_table("statement_entries")
    op.drop_table("refund_lines")
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_user_id"))

    op.drop_table("refresh_tokens")
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postings_entry_id"))
        batch_op.drop_index(batch_op.f("ix_postings_account"))

    op.drop_table("postings")
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payouts_statement_id"))
        batch_op.drop_index(batch_op.f("ix_payouts_merchant_id"))

    op.drop_table("payouts")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_status"))
        batch_op.drop_index(batch_op.f("ix_orders_merchant_id"))
        batch_op.drop_index(batch_op.f("ix_orders_created_at"))
        batch_op.drop_index(batch_op.f("ix_orders_buyer_id"))

    op.drop_table("orders")
    with op.batch_alter_table("coupon_redemptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupon_redemptions_coupon_code"))
        batch_op.drop_index(batch_op.f("ix_coupon_redemptions_buyer_id"))

    op.drop_table("coupon_redemptions")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_merchant_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_events_order_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_events_merchant_id"))

    op.drop_table("webhook_events")
    op.drop_table("users")
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_statements_merchant_id"))

    op.drop_table("statements")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_order_id"))

    op.drop_table("refunds")
    with op.batch_alter_table("party_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_party_notifications_recipient_id"))
        batch_op.drop_index(batch_op.f("ix_party_notifications_order_id"))

    op.drop_table("party_notifications")
    op.drop_table("merchants")
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_entries_order_id"))
        batch_op.drop_index("ix_journal_entries_merchant_time")
        batch_op.drop_index(batch_op.f("ix_journal_entries_merchant_id"))
        batch_op.drop_index(batch_op.f("ix_journal_entries_created_at"))

    op.drop_table("journal_entries")
    op.drop_table("idempotency_keys")
    op.drop_table("coupons")
    with op.batch_alter_table("channel_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channel_notifications_order_id"))

    op.drop_table("channel_notifications")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_owner"))
        batch_op.drop_index(batch_op.f("ix_accounts_kind"))

    op.drop_table("accounts")
