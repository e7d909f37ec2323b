"""The database protects the money too: CHECK, UNIQUE and FOREIGN KEY constraints behind
the code's invariants, and on PostgreSQL a trigger that refuses an unbalanced entry.

Rows already stored are kept as they are, and must satisfy every new constraint: before
changing anything the upgrade counts, per constraint, the rows that would break it, and
if there are any it stops with that list and changes nothing. Money rows are never
rewritten by a migration to make them fit: a row that breaks one of these rules is a
bug's trace, for a person to look at (and correct, or keep by restoring the previous
version) before upgrading. What paysaga's db layer writes fits: a baseline database
filled through it (orders paid, refunded, settled and paid out) upgrades with every row
(tests/db/test_migrations.py).

SQLite rebuilds each table to add its constraints (batch mode, one rebuild per table);
PostgreSQL adds them in place. The entry trigger is PostgreSQL's only: SQLite keeps the
check in db.ledger.post_entry.

Revision ID: 0003_constraints
Revises: 0002_payment_attempts
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0003_constraints"
down_revision: str | None = "0002_payment_attempts"
branch_labels: str | None = None
depends_on: str | None = None


class Check(NamedTuple):
    name: str
    condition: str


class Unique(NamedTuple):
    name: str
    columns: list[str]


class Reference(NamedTuple):
    name: str
    columns: list[str]
    target: str
    target_columns: list[str]


Constraint = Check | Unique | Reference

_ORDER_STATUSES = (
    "'created', 'awaiting_payment', 'paid', 'settled', 'awaiting_receipt', 'completed', "
    "'closed', 'cancelled', 'refunding', 'refunded', 'compensation_failed', 'rejected'"
)
_ACCOUNT_KINDS = (
    "'channel_clearing', 'bank', 'merchant_pending', 'merchant_available', "
    "'merchant_in_transit', 'refunds_in_flight', 'platform_commission', 'channel_fee'"
)
_ENTRY_KINDS = (
    "'settlement', 'reversal', 'funds_released', 'refund_reserved', 'refund_completed', "
    "'refund_failed', 'payout_started', 'payout_paid', 'payout_returned'"
)

# Per table, in an order where a referenced key exists before its references (accounts'
# (id, currency) before postings'). The text is exactly the models' (db/tables.py).
CONSTRAINTS: dict[str, tuple[Constraint, ...]] = {
    "merchants": (Check("ck_merchants_status", "status IN ('active', 'suspended')"),),
    "users": (Check("ck_users_role", "role IN ('buyer', 'operator')"),),
    "coupons": (
        Check("ck_coupons_kind", "kind IN ('percentage', 'fixed', 'threshold')"),
        Check("ck_coupons_amount_off", "amount_off IS NULL OR amount_off > 0"),
        Check("ck_coupons_min_total", "min_total IS NULL OR min_total >= 0"),
        Check(
            "ck_coupons_limits",
            "max_redemptions >= 1 AND (per_buyer_limit IS NULL OR per_buyer_limit >= 1)",
        ),
    ),
    "orders": (
        Check("ck_orders_status", f"status IN ({_ORDER_STATUSES})"),
        Check(
            "ck_orders_discount_within_total",
            "discount_amount >= 0 AND discount_amount <= total_amount",
        ),
        Check("ck_orders_payable", "payable_amount = total_amount - discount_amount"),
        Check("ck_orders_payment_timeout", "payment_timeout_seconds > 0"),
        Check(
            "ck_orders_split",
            "(channel_fee_amount IS NULL AND commission_amount IS NULL"
            " AND merchant_net_amount IS NULL)"
            " OR (channel_fee_amount IS NOT NULL AND commission_amount IS NOT NULL"
            " AND merchant_net_amount IS NOT NULL AND channel_fee_amount >= 0"
            " AND commission_amount >= 0 AND merchant_net_amount >= 0"
            " AND channel_fee_amount + commission_amount + merchant_net_amount = payable_amount)",
        ),
        Check(
            "ck_orders_refunded_within_payable",
            "refunded_amount >= 0 AND refunded_amount <= payable_amount",
        ),
        Check(
            "ck_orders_refunded_parts",
            "refunded_fee_amount >= 0 AND refunded_commission_amount >= 0"
            " AND refunded_net_amount >= 0 AND refunded_fee_amount"
            " + refunded_commission_amount + refunded_net_amount = refunded_amount",
        ),
        Reference("fk_orders_buyer", ["buyer_id"], "users", ["id"]),
        Reference("fk_orders_coupon", ["coupon_code"], "coupons", ["code"]),
    ),
    "coupon_redemptions": (
        Check("ck_coupon_redemptions_status", "status IN ('reserved', 'consumed', 'released')"),
        Reference("fk_coupon_redemptions_order", ["order_id"], "orders", ["id"]),
        Reference("fk_coupon_redemptions_buyer", ["buyer_id"], "users", ["id"]),
    ),
    "order_lines": (
        Check("ck_order_lines_quantity_positive", "quantity > 0"),
        Check("ck_order_lines_total", "line_total = quantity * unit_amount"),
        Check(
            "ck_order_lines_discount_within_total",
            "discount_amount >= 0 AND discount_amount <= line_total",
        ),
        Check("ck_order_lines_payable", "payable_amount = line_total - discount_amount"),
    ),
    "payments": (
        Check("ck_payments_status", "status IN ('pending', 'paid', 'closed', 'declined')"),
        Check("ck_payments_amount_not_negative", "amount >= 0"),
        Check("ck_payments_attempt_positive", "attempt >= 1"),
        Check("ck_payments_paid_at", "status <> 'paid' OR paid_at IS NOT NULL"),
        Unique("uq_payments_channel_txn", ["channel", "channel_txn_id"]),
    ),
    "refunds": (
        Check("ck_refunds_status", "status IN ('pending', 'succeeded', 'failed')"),
        Check(
            "ck_refunds_requested_by",
            "requested_by IN ('buyer', 'merchant', 'operator', 'system')",
        ),
        Check("ck_refunds_amount_positive", "amount > 0"),
        Check(
            "ck_refunds_parts",
            "channel_fee_amount >= 0 AND commission_amount >= 0 AND merchant_net_amount >= 0"
            " AND (channel_fee_amount + commission_amount + merchant_net_amount = amount"
            " OR (requested_by = 'system'"
            " AND channel_fee_amount + commission_amount + merchant_net_amount = 0))",
        ),
        Reference("fk_refunds_order", ["order_id"], "orders", ["id"]),
    ),
    "refund_lines": (
        Check("ck_refund_lines_quantity_positive", "quantity > 0"),
        Check("ck_refund_lines_amount_not_negative", "amount >= 0"),
    ),
    "accounts": (
        Check("ck_accounts_kind", f"kind IN ({_ACCOUNT_KINDS})"),
        Check("ck_accounts_id_parts", "id = kind || ':' || owner || ':' || currency"),
        Check(
            "ck_accounts_held_money_not_negative",
            "kind NOT IN ('merchant_pending', 'merchant_in_transit', 'refunds_in_flight')"
            " OR balance <= 0",
        ),
        Unique("uq_accounts_id_currency", ["id", "currency"]),
    ),
    "journal_entries": (
        Check("ck_journal_entries_kind", f"kind IN ({_ENTRY_KINDS})"),
        Check(
            "ck_journal_entries_reversal",
            "(kind = 'reversal' AND reverses_entry_id IS NOT NULL)"
            " OR (kind <> 'reversal' AND reverses_entry_id IS NULL)",
        ),
        Unique("uq_journal_entries_reverses", ["reverses_entry_id"]),
        Reference("fk_journal_entries_reverses", ["reverses_entry_id"], "journal_entries", ["id"]),
        Reference("fk_journal_entries_order", ["order_id"], "orders", ["id"]),
        Reference("fk_journal_entries_merchant", ["merchant_id"], "merchants", ["id"]),
    ),
    "postings": (
        Check("ck_postings_amount_not_zero", "amount <> 0"),
        Reference(
            "fk_postings_account_currency",
            ["account", "currency"],
            "accounts",
            ["id", "currency"],
        ),
    ),
    "party_notifications": (
        Check("ck_party_notifications_recipient", "recipient IN ('buyer', 'merchant')"),
        Reference("fk_party_notifications_order", ["order_id"], "orders", ["id"]),
    ),
    "reviews": (
        Check("ck_reviews_rating", "rating >= 1 AND rating <= 5"),
        Reference("fk_reviews_merchant", ["merchant_id"], "merchants", ["id"]),
        Reference("fk_reviews_buyer", ["buyer_id"], "users", ["id"]),
    ),
    "webhook_events": (
        Check("ck_webhook_events_type", "type IN ('order.paid', 'order.closed', 'order.refunded')"),
        Check("ck_webhook_events_attempts", "attempts >= 0"),
        Reference("fk_webhook_events_merchant", ["merchant_id"], "merchants", ["id"]),
        Reference("fk_webhook_events_order", ["order_id"], "orders", ["id"]),
    ),
    "idempotency_keys": (
        Unique("uq_idempotency_keys_order", ["order_id"]),
        Check(
            "ck_idempotency_keys_response",
            "(status_code IS NULL AND response_body IS NULL)"
            " OR (status_code IS NOT NULL AND response_body IS NOT NULL)",
        ),
    ),
    "statements": (
        Unique("uq_statements_sequence", ["merchant_id", "currency", "sequence"]),
        Check("ck_statements_sequence_positive", "sequence >= 1"),
        Check(
            "ck_statements_amounts_not_negative",
            "gross_amount >= 0 AND channel_fee_amount >= 0 AND commission_amount >= 0"
            " AND returned_amount >= 0 AND clawback_amount >= 0 AND payout_amount >= 0"
            " AND order_count >= 0",
        ),
        Check(
            "ck_statements_add_up",
            "opening_balance + gross_amount - channel_fee_amount - commission_amount"
            " - refunded_amount + returned_amount - payout_amount = closing_balance",
        ),
        Reference("fk_statements_merchant", ["merchant_id"], "merchants", ["id"]),
    ),
    "payouts": (
        Check("ck_payouts_status", "status IN ('pending', 'paid', 'failed')"),
        Check("ck_payouts_amount_positive", "amount > 0"),
        Unique("uq_payouts_statement", ["statement_id"]),
        Reference("fk_payouts_merchant", ["merchant_id"], "merchants", ["id"]),
    ),
}

# At most one paid attempt per order: a unique index on part of the table.
_ONE_PAID = "uq_payments_one_paid_attempt"
_PAID = "status = 'paid'"

# Deferred to COMMIT, so an entry and its postings may be written in any order within
# the transaction; runs once per row changed, for the entries that row belongs to.
_ENTRY_CHECK = """
CREATE FUNCTION check_entry_balances(entry text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    unbalanced text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM journal_entries WHERE id = entry) THEN
        RETURN;  -- deleted with its postings: the foreign keys speak for what is left
    END IF;
    IF NOT EXISTS (SELECT 1 FROM postings WHERE entry_id = entry) THEN
        RAISE EXCEPTION 'journal entry % has no postings', entry
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT string_agg(currency || ' ' || total, ', ' ORDER BY currency) INTO unbalanced
    FROM (
        SELECT currency, sum(amount) AS total FROM postings
        WHERE entry_id = entry GROUP BY currency HAVING sum(amount) <> 0
    ) AS sums;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % does not balance: %', entry, unbalanced
            USING ERRCODE = 'check_violation';
    END IF;
END
$$
"""
_POSTING_CHANGED = """
CREATE FUNCTION posting_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM check_entry_balances(OLD.entry_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM check_entry_balances(NEW.entry_id);
    END IF;
    RETURN NULL;
END
$$
"""
_ENTRY_ADDED = """
CREATE FUNCTION journal_entry_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM check_entry_balances(NEW.id);  -- an entry without postings is refused too
    RETURN NULL;
END
$$
"""
_ENTRY_TRIGGERS = {
    "postings_balance": ("AFTER INSERT OR UPDATE OR DELETE ON postings", "posting_changed"),
    "journal_entries_balance": ("AFTER INSERT ON journal_entries", "journal_entry_added"),
}


def upgrade() -> None:
    _refuse_violating_rows()
    for table, constraints in CONSTRAINTS.items():
        with op.batch_alter_table(table) as batch_op:
            for constraint in constraints:
                _create(batch_op, constraint)
    op.create_index(
        _ONE_PAID,
        "payments",
        ["order_id"],
        unique=True,
        sqlite_where=sa.text(_PAID),
        postgresql_where=sa.text(_PAID),
    )
    if op.get_bind().dialect.name == "postgresql":
        for function in (_ENTRY_CHECK, _POSTING_CHANGED, _ENTRY_ADDED):
            op.execute(function)
        for name, (when, function) in _ENTRY_TRIGGERS.items():
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {name} {when}"
                f" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {function}()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER journal_entries_balance ON journal_entries")
        op.execute("DROP TRIGGER postings_balance ON postings")
        op.execute("DROP FUNCTION journal_entry_added()")
        op.execute("DROP FUNCTION posting_changed()")
        op.execute("DROP FUNCTION check_entry_balances(text)")
    op.drop_index(_ONE_PAID, "payments")
    for table, constraints in reversed(CONSTRAINTS.items()):
        with op.batch_alter_table(table) as batch_op:
            for constraint in reversed(constraints):
                batch_op.drop_constraint(constraint.name, type_=_kind(constraint))


def _create(batch_op: BatchOperations, constraint: Constraint) -> None:
    if isinstance(constraint, Check):
        batch_op.create_check_constraint(constraint.name, sa.text(constraint.condition))
    elif isinstance(constraint, Unique):
        batch_op.create_unique_constraint(constraint.name, constraint.columns)
    else:
        batch_op.create_foreign_key(
            constraint.name, constraint.target, constraint.columns, constraint.target_columns
        )


def _kind(constraint: Constraint) -> str:
    if isinstance(constraint, Check):
        return "check"
    return "unique" if isinstance(constraint, Unique) else "foreignkey"


# -- rows that would break a constraint --------------------------------------------


def _refuse_violating_rows() -> None:
    """Stop before any change if stored rows break a constraint this revision adds."""
    connection = op.get_bind()
    found = []
    for table, constraints in CONSTRAINTS.items():
        for constraint in constraints:
            count = connection.execute(sa.text(_violations(table, constraint))).scalar_one()
            if count:
                found.append(f"{constraint.name}: {count} row(s) of {table}")
    count = connection.execute(
        sa.text(
            f"SELECT count(*) FROM (SELECT order_id FROM payments WHERE {_PAID}"
            " GROUP BY order_id HAVING count(*) > 1) AS twice_paid"
        )
    ).scalar_one()
    if count:
        found.append(f"{_ONE_PAID}: {count} order(s) with more than one paid attempt")
    if found:
        raise RuntimeError(
            "stored rows break constraints this upgrade adds, so nothing was changed; "
            "correct them (or keep the previous version) and upgrade again: " + "; ".join(found)
        )


def _violations(table: str, constraint: Constraint) -> str:
    """A query counting the rows of `table` that `constraint` would refuse."""
    if isinstance(constraint, Check):
        # A CHECK refuses only FALSE (NULL passes), and so does NOT (...) here.
        return f"SELECT count(*) FROM {table} WHERE NOT ({constraint.condition})"
    present = " AND ".join(f"child.{column} IS NOT NULL" for column in constraint.columns)
    if isinstance(constraint, Unique):
        columns = ", ".join(f"child.{column}" for column in constraint.columns)
        return (
            f"SELECT count(*) FROM (SELECT {columns} FROM {table} AS child WHERE {present}"
            f" GROUP BY {columns} HAVING count(*) > 1) AS duplicates"
        )
    matches = " AND ".join(
        f"parent.{target} = child.{column}"
        for column, target in zip(constraint.columns, constraint.target_columns, strict=True)
    )
    return (
        f"SELECT count(*) FROM {table} AS child WHERE {present} AND NOT EXISTS"
        f" (SELECT 1 FROM {constraint.target} AS parent WHERE {matches})"
    )
