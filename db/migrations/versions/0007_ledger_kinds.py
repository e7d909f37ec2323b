"""Ledger vocabulary for reconciliation and cross-border money: new account and entry kinds.

Accounts: `late_payments` (money paid to an order that had ended, owed back to the
buyer; never negative, like the other accounts that hold money for someone), the FX
accounts (`fx_position`, `fx_markup_revenue`, `fx_gain_loss`, `fx_rounding`) and
`adjustments` (an operator's approved correction). Entries: late payments received and
refunded, channel sweeps into the bank, FX conversions and realised differences, and
adjustments.

Only CHECK constraints change; no row does, and every existing row satisfies the wider
checks. Downgrade narrows them again, which fails (and changes nothing) while a row of
a new kind exists.

Revision ID: 0007_ledger_kinds
Revises: 0006_order_return_urls
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_ledger_kinds"
down_revision: str | None = "0006_order_return_urls"
branch_labels: str | None = None
depends_on: str | None = None

_OLD_ACCOUNT_KINDS = (
    "channel_clearing",
    "bank",
    "merchant_pending",
    "merchant_available",
    "merchant_in_transit",
    "refunds_in_flight",
    "platform_commission",
    "channel_fee",
)
_NEW_ACCOUNT_KINDS = (
    *_OLD_ACCOUNT_KINDS,
    "late_payments",
    "fx_position",
    "fx_markup_revenue",
    "fx_gain_loss",
    "fx_rounding",
    "adjustments",
)
_OLD_ENTRY_KINDS = (
    "settlement",
    "reversal",
    "funds_released",
    "refund_reserved",
    "refund_completed",
    "refund_failed",
    "payout_started",
    "payout_paid",
    "payout_returned",
)
_NEW_ENTRY_KINDS = (
    *_OLD_ENTRY_KINDS,
    "late_payment_received",
    "late_payment_refunded",
    "channel_sweep",
    "fx_conversion",
    "fx_realised",
    "adjustment",
)
_OLD_HELD = ("merchant_pending", "merchant_in_transit", "refunds_in_flight")
_NEW_HELD = (*_OLD_HELD, "late_payments")


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _checks(accounts: tuple[str, ...], entries: tuple[str, ...], held: tuple[str, ...]) -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_constraint("ck_accounts_kind", type_="check")
        batch_op.drop_constraint("ck_accounts_held_money_not_negative", type_="check")
        batch_op.create_check_constraint(
            "ck_accounts_kind", sa.text(f"kind IN ({_listed(accounts)})")
        )
        batch_op.create_check_constraint(
            "ck_accounts_held_money_not_negative",
            sa.text(f"kind NOT IN ({_listed(held)}) OR balance <= 0"),
        )
    with op.batch_alter_table("journal_entries") as batch_op:
        batch_op.drop_constraint("ck_journal_entries_kind", type_="check")
        batch_op.create_check_constraint(
            "ck_journal_entries_kind", sa.text(f"kind IN ({_listed(entries)})")
        )


def upgrade() -> None:
    _checks(_NEW_ACCOUNT_KINDS, _NEW_ENTRY_KINDS, _NEW_HELD)


def downgrade() -> None:
    _checks(_OLD_ACCOUNT_KINDS, _OLD_ENTRY_KINDS, _OLD_HELD)
