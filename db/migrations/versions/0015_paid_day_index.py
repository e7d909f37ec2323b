"""A channel-day's paid payments as one range of one index, with every column the
reconciliation's one pass compares.

`payments.channel_fee_amount`: the channel fee booked for the paid attempt, a copy of its
order's `channel_fee_amount` (NULL on any other attempt, and until the order is
captured). The database keeps it, not the code: triggers copy the order's fee when an
attempt is written paid and when the order's fee is set, so every writer (a worker of
any version, a repair by hand) keeps it right. Existing paid payments get their order's
fee. The models do not map the column (db.tables: `Payment.__table__` only): the ORM
never writes it.

`ix_payments_paid_day` (partial: paid only) on (channel, paid_at, attempt, order_id,
amount, currency, channel_fee_amount). Before, a day's reconciliation read every payment
the channel ever had (SQLite, through the channel's unique key) or the whole table
(PostgreSQL), and joined each to its order for the fee, so its time grew with the years
kept; now a day is a range of the index, read from the index alone.

A later revision that rebuilds `payments` on SQLite (a batch operation) drops its
triggers with the old table: it must create them again (`create_fee_triggers`).
Downgrade drops the triggers, the index and the column.

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
_COLUMNS = ["channel", "paid_at", "attempt", "order_id", "amount", "currency", "channel_fee_amount"]
_BACKFILL = (
    "UPDATE payments SET channel_fee_amount = (SELECT o.channel_fee_amount FROM orders AS o"
    " WHERE o.id = payments.order_id) WHERE status = 'paid'"
)
# The copy a payment row should hold: its order's fee when paid, else nothing.
_SQLITE_OWN_FEE = """
    UPDATE payments SET channel_fee_amount = CASE WHEN NEW.status = 'paid' THEN
      (SELECT o.channel_fee_amount FROM orders AS o WHERE o.id = NEW.order_id) END
    WHERE order_id = NEW.order_id AND attempt = NEW.attempt;
"""
_SQLITE = {
    # A new pending attempt (every order's first) has nothing to copy: no write for it.
    "payments_fee_on_insert": (
        "AFTER INSERT ON payments"
        " WHEN NEW.status = 'paid' OR NEW.channel_fee_amount IS NOT NULL"
        f" BEGIN {_SQLITE_OWN_FEE} END"
    ),
    "payments_fee_on_update": (
        f"AFTER UPDATE OF status, order_id, channel_fee_amount ON payments"
        f" WHEN NEW.channel_fee_amount IS NOT (CASE WHEN NEW.status = 'paid' THEN"
        f" (SELECT o.channel_fee_amount FROM orders AS o WHERE o.id = NEW.order_id) END)"
        f" BEGIN {_SQLITE_OWN_FEE} END"
    ),
    "orders_fee_to_payment": (
        "AFTER UPDATE OF channel_fee_amount ON orders BEGIN"
        " UPDATE payments SET channel_fee_amount = NEW.channel_fee_amount"
        " WHERE order_id = NEW.id AND status = 'paid'; END"
    ),
}
_POSTGRES_FUNCTIONS = """
CREATE FUNCTION payment_own_fee() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE fee bigint;
BEGIN
  IF NEW.status = 'paid' THEN
    -- FOR SHARE: a transaction setting the order's fee found this payment not yet paid
    -- (order_fee_to_payment); wait for it and read its fee, or make it wait for us.
    SELECT o.channel_fee_amount INTO fee FROM orders AS o WHERE o.id = NEW.order_id FOR SHARE;
  END IF;
  NEW.channel_fee_amount := fee;
  RETURN NEW;
END $$;
CREATE FUNCTION order_fee_to_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE payments SET channel_fee_amount = NEW.channel_fee_amount
  WHERE order_id = NEW.id AND status = 'paid';
  RETURN NULL;
END $$;
"""
_POSTGRES = {
    "payments_own_fee": (
        "BEFORE INSERT OR UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION payment_own_fee()"
    ),
    "orders_fee_to_payment": (
        "AFTER UPDATE OF channel_fee_amount ON orders FOR EACH ROW"
        " WHEN (OLD.channel_fee_amount IS DISTINCT FROM NEW.channel_fee_amount)"
        " EXECUTE FUNCTION order_fee_to_payment()"
    ),
}


def create_fee_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTIONS)
        for name, body in _POSTGRES.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        for name, body in _SQLITE.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def upgrade() -> None:
    op.add_column("payments", sa.Column("channel_fee_amount", sa.BigInteger(), nullable=True))
    op.execute(_BACKFILL)
    create_fee_triggers()
    op.create_index(
        "ix_payments_paid_day", "payments", _COLUMNS, sqlite_where=_PAID, postgresql_where=_PAID
    )


def downgrade() -> None:
    op.drop_index("ix_payments_paid_day", table_name="payments")
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in _POSTGRES if postgres else _SQLITE:
        table = "orders" if name.startswith("orders") else "payments"
        op.execute(f"DROP TRIGGER {name}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION payment_own_fee(); DROP FUNCTION order_fee_to_payment()")
    # SQLite drops the column in place (3.35 and later): a batch rebuild of payments would
    # lose the partial unique index of its paid attempt.
    op.execute("ALTER TABLE payments DROP COLUMN channel_fee_amount")
