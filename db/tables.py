"""SQLModel tables: the database is a projection of the sagas plus the ledger.

Amounts are BIGINT minor units. Rates are stored as decimal strings so that no
database float ever touches them.

The database backs the code's invariants with named constraints (`ck_`, `uq_`,
`fk_`): what must never be stored is refused there too, whatever writes it. A
constraint changed here needs a revision (db/migrations), and the CHECKs built from
the domain's enums change when an enum gains a value: tests/db/test_constraints.py
compares them with a migrated database. PostgreSQL also refuses, at commit, a
journal entry whose postings do not sum to zero per currency (a trigger made by
revision 0003; SQLite relies on db.ledger's check).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlmodel import Field, SQLModel

from domain.fx.quotes import MAX_MARKUP_BPS
from domain.ledger import AccountKind, EntryKind
from domain.order_status import OrderStatus
from domain.pricing import CouponKind
from domain.reconciliation import DiscrepancyType, ExceptionStatus, RunStatus
from domain.refunds import RefundStatus
from domain.settlement import PayoutStatus
from domain.webhook_events import EventType

# The statuses a payment row takes (channels.base.PaymentStatus; db does not import
# channels). A modification's earlier attempt is "closed": the channel closed it.
PAYMENT_STATUSES = ("pending", "paid", "closed", "declined")
# Refunds our rules rejected are never stored.
STORED_REFUND_STATUSES = (RefundStatus.PENDING, RefundStatus.SUCCEEDED, RefundStatus.FAILED)
# Accounts that hold money for someone and may never go below zero (db.ledger refuses
# it; `may_go_negative`). A merchant's available balance may: a refund after payout.
NEVER_NEGATIVE_ACCOUNTS = (
    AccountKind.MERCHANT_PENDING,
    AccountKind.MERCHANT_IN_TRANSIT,
    AccountKind.REFUNDS_IN_FLIGHT,
    AccountKind.LATE_PAYMENTS,
)


def _money(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(BigInteger, nullable=nullable)


def _listed(values: Iterable[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _one_of(name: str, column: str, values: Iterable[str]) -> CheckConstraint:
    return CheckConstraint(f"{column} IN ({_listed(values)})", name=name)


def _references(name: str, column: str, target: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint([column], [target], name=name)


class Merchant(SQLModel, table=True):
    __tablename__ = "merchants"
    __table_args__ = (_one_of("ck_merchants_status", "status", ("active", "suspended")),)

    id: str = Field(primary_key=True)
    name: str
    commission_rate: str  # Decimal as text
    status: str = "active"  # active | suspended
    settlement_currency: str | None = None
    # The payout bank account, encrypted at rest (db.secret_box); only its last 4 are shown.
    bank_account_ciphertext: str | None = Field(default=None, sa_column=Column(Text))
    bank_account_last4: str | None = None
    webhook_url: str | None = None
    # Signs the merchant's webhooks; encrypted at rest, rotatable by the merchant.
    webhook_secret_ciphertext: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime
    updated_at: datetime


class Coupon(SQLModel, table=True):
    __tablename__ = "coupons"
    __table_args__ = (
        _one_of("ck_coupons_kind", "kind", CouponKind),
        CheckConstraint("amount_off IS NULL OR amount_off > 0", name="ck_coupons_amount_off"),
        CheckConstraint("min_total IS NULL OR min_total >= 0", name="ck_coupons_min_total"),
        CheckConstraint(
            "max_redemptions >= 1 AND (per_buyer_limit IS NULL OR per_buyer_limit >= 1)",
            name="ck_coupons_limits",
        ),
    )

    code: str = Field(primary_key=True)
    kind: str
    percent_off: str | None = None  # Decimal as text
    amount_off: int | None = Field(default=None, sa_column=_money(nullable=True))
    min_total: int | None = Field(default=None, sa_column=_money(nullable=True))
    currency: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_redemptions: int = 1  # the campaign's total quantity
    per_buyer_limit: int | None = None  # orders per buyer; None: no limit
    # An operator ended the campaign early: no new holds; the orders holding it keep them.
    disabled_at: datetime | None = None
    created_at: datetime


class CouponRedemption(SQLModel, table=True):
    """One order's hold on a coupon: reserved, then consumed at payment or released."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        _one_of("ck_coupon_redemptions_status", "status", ("reserved", "consumed", "released")),
        # The order row and its hold are written in one transaction (record_order).
        _references("fk_coupon_redemptions_order", "order_id", "orders.id"),
        _references("fk_coupon_redemptions_buyer", "buyer_id", "users.id"),
    )

    order_id: str = Field(primary_key=True)
    coupon_code: str = Field(index=True, foreign_key="coupons.code")
    buyer_id: str | None = Field(default=None, index=True)
    status: str  # reserved | consumed | released
    updated_at: datetime


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        _one_of("ck_orders_status", "status", OrderStatus),
        # Also keeps the total from going negative.
        CheckConstraint(
            "discount_amount >= 0 AND discount_amount <= total_amount",
            name="ck_orders_discount_within_total",
        ),
        CheckConstraint(
            "payable_amount = total_amount - discount_amount", name="ck_orders_payable"
        ),
        CheckConstraint("payment_timeout_seconds > 0", name="ck_orders_payment_timeout"),
        # Set together at capture (db.order_money.capture_payment); the parts add up.
        # (Spelled out: a CHECK lets NULL through, and one NULL part would make it NULL.)
        CheckConstraint(
            "(channel_fee_amount IS NULL AND commission_amount IS NULL"
            " AND merchant_net_amount IS NULL)"
            " OR (channel_fee_amount IS NOT NULL AND commission_amount IS NOT NULL"
            " AND merchant_net_amount IS NOT NULL AND channel_fee_amount >= 0"
            " AND commission_amount >= 0 AND merchant_net_amount >= 0"
            " AND channel_fee_amount + commission_amount + merchant_net_amount = payable_amount)",
            name="ck_orders_split",
        ),
        # Refunds never give back more than was paid, also when requests race.
        CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= payable_amount",
            name="ck_orders_refunded_within_payable",
        ),
        CheckConstraint(
            "refunded_fee_amount >= 0 AND refunded_commission_amount >= 0"
            " AND refunded_net_amount >= 0 AND refunded_fee_amount"
            " + refunded_commission_amount + refunded_net_amount = refunded_amount",
            name="ck_orders_refunded_parts",
        ),
        # The API checks the signed-in buyer and the coupon before the saga records it.
        _references("fk_orders_buyer", "buyer_id", "users.id"),
        _references("fk_orders_coupon", "coupon_code", "coupons.code"),
    )

    id: str = Field(primary_key=True)
    merchant_id: str = Field(index=True, foreign_key="merchants.id")
    # "" while the buyer has not chosen a method on the hosted checkout (then its fee
    # rate is "0" until the choice sets both); each attempt's own is on its payment row.
    channel: str
    currency: str
    description: str = ""
    buyer_ref: str | None = None
    # The signed-in buyer who placed it (None: placed by the merchant or an operator).
    buyer_id: str | None = Field(default=None, index=True)
    total_amount: int = Field(sa_column=_money())
    discount_amount: int = Field(sa_column=_money())
    payable_amount: int = Field(sa_column=_money())
    coupon_code: str | None = None
    channel_fee_rate: str
    commission_rate: str
    payment_timeout_seconds: int
    status: str = Field(index=True)
    close_reason: str | None = None
    needs_review: bool = False
    review_reason: str | None = None
    channel_fee_amount: int | None = Field(default=None, sa_column=_money(nullable=True))
    commission_amount: int | None = Field(default=None, sa_column=_money(nullable=True))
    merchant_net_amount: int | None = Field(default=None, sa_column=_money(nullable=True))
    # Refunds asked and not failed (in flight or done), and the split parts they took.
    refunded_amount: int = Field(default=0, sa_column=_money())
    refunded_fee_amount: int = Field(default=0, sa_column=_money())
    refunded_commission_amount: int = Field(default=0, sa_column=_money())
    refunded_net_amount: int = Field(default=0, sa_column=_money())
    # Set when the order completed and the merchant's share became available.
    funds_released_at: datetime | None = None
    created_at: datetime = Field(index=True)
    updated_at: datetime


class OrderReturnUrl(SQLModel, table=True):
    """Where the hosted checkout sends an order's buyer back (a validated http(s) URL);
    orders without one have no row. Its own table so the orders table stays as every
    earlier revision wrote it."""

    __tablename__ = "order_return_urls"
    __table_args__ = (_references("fk_order_return_urls_order", "order_id", "orders.id"),)

    order_id: str = Field(primary_key=True)
    return_url: str


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="ck_order_lines_quantity_positive"),
        CheckConstraint("line_total = quantity * unit_amount", name="ck_order_lines_total"),
        # With the two above, also keeps the unit amount from going negative.
        CheckConstraint(
            "discount_amount >= 0 AND discount_amount <= line_total",
            name="ck_order_lines_discount_within_total",
        ),
        CheckConstraint(
            "payable_amount = line_total - discount_amount", name="ck_order_lines_payable"
        ),
    )

    order_id: str = Field(primary_key=True, foreign_key="orders.id")
    line_no: int = Field(primary_key=True)
    sku: str
    name: str
    quantity: int
    unit_amount: int = Field(sa_column=_money())
    line_total: int = Field(sa_column=_money())
    discount_amount: int = Field(sa_column=_money())
    payable_amount: int = Field(sa_column=_money())


class Payment(SQLModel, table=True):
    """One attempt to collect the order's payment at its channel (late extra payments are
    refunds, not rows here).

    A modification closes the pending attempt at the channel and issues the next one,
    under its own reference (`domain.keys.payment_reference(order_id, attempt)`): a row
    per attempt, the earlier ones closed; the latest is the order's current payment
    (db.payments). At most one attempt of an order is ever paid.
    """

    __tablename__ = "payments"
    __table_args__ = (
        _one_of("ck_payments_status", "status", PAYMENT_STATUSES),
        CheckConstraint("amount >= 0", name="ck_payments_amount_not_negative"),
        CheckConstraint("attempt >= 1", name="ck_payments_attempt_positive"),
        CheckConstraint("status <> 'paid' OR paid_at IS NOT NULL", name="ck_payments_paid_at"),
        # A channel's transaction pays one attempt (NULLs, not yet paid, never collide).
        UniqueConstraint("channel", "channel_txn_id", name="uq_payments_channel_txn"),
        Index(
            "uq_payments_one_paid_attempt",
            "order_id",
            unique=True,
            sqlite_where=text("status = 'paid'"),
            postgresql_where=text("status = 'paid'"),
        ),
    )

    order_id: str = Field(primary_key=True, foreign_key="orders.id")
    channel: str
    attempt: int = Field(default=1, primary_key=True)
    channel_payment_id: str | None = None
    checkout_url: str | None = None
    qr_payload: str | None = None
    status: str  # pending | paid | closed | declined
    channel_txn_id: str | None = None
    amount: int = Field(sa_column=_money())
    currency: str
    paid_at: datetime | None = None
    updated_at: datetime


_PAYMENTS: Table = SQLModel.metadata.tables["payments"]
# The paid attempt's copy of its order's channel fee (NULL on any other attempt), kept by
# the database's triggers (revision 0015), so it is right whoever writes: not mapped on
# Payment, the ORM never writes it. The reconciliation compares a day's payments with
# the bill by it, without reading their orders.
_PAYMENTS.append_column(Column("channel_fee_amount", BigInteger, nullable=True))
# A channel-day's paid payments with every column the reconciliation's one pass compares:
# a range of the index, read from the index alone, not a scan of every payment ever.
Index(
    "ix_payments_paid_day",
    *(
        _PAYMENTS.c[name]
        for name in (
            "channel",
            "paid_at",
            "attempt",
            "order_id",
            "amount",
            "currency",
            "channel_fee_amount",
        )
    ),
    sqlite_where=text("status = 'paid'"),
    postgresql_where=text("status = 'paid'"),
)


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (
        _one_of("ck_refunds_status", "status", STORED_REFUND_STATUSES),
        _one_of(
            "ck_refunds_requested_by", "requested_by", ("buyer", "merchant", "operator", "system")
        ),
        CheckConstraint("amount > 0", name="ck_refunds_amount_positive"),
        # A requested refund's parts add up to it; a saga's own (system) moves none.
        CheckConstraint(
            "channel_fee_amount >= 0 AND commission_amount >= 0 AND merchant_net_amount >= 0"
            " AND (channel_fee_amount + commission_amount + merchant_net_amount = amount"
            " OR (requested_by = 'system'"
            " AND channel_fee_amount + commission_amount + merchant_net_amount = 0))",
            name="ck_refunds_parts",
        ),
        # Late-payment refunds too: the API takes a payment notification only for an
        # order it has (api/routes/notify.py), so every refund names a real order.
        _references("fk_refunds_order", "order_id", "orders.id"),
    )

    id: str = Field(primary_key=True)  # also the channel's idempotency key (out_refund_no)
    order_id: str = Field(index=True)
    channel: str
    channel_txn_id: str | None = None
    amount: int = Field(sa_column=_money())
    currency: str
    reason: str
    status: str  # pending | succeeded | failed
    failure_reason: str | None = None
    # Who asked (buyer | merchant | operator | system) and, for requested refunds, the
    # split parts the refund takes back (compensation refunds move no ledger money).
    requested_by: str = "system"
    channel_fee_amount: int = Field(default=0, sa_column=_money())
    commission_amount: int = Field(default=0, sa_column=_money())
    merchant_net_amount: int = Field(default=0, sa_column=_money())
    from_available: bool = False  # the merchant's part came from available (after completion)
    created_at: datetime
    updated_at: datetime


class RefundLine(SQLModel, table=True):
    """Which order lines (and how many units of each) a per-line refund gives back."""

    __tablename__ = "refund_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="ck_refund_lines_quantity_positive"),
        CheckConstraint("amount >= 0", name="ck_refund_lines_amount_not_negative"),
    )

    refund_id: str = Field(primary_key=True, foreign_key="refunds.id")
    line_no: int = Field(primary_key=True)
    quantity: int
    amount: int = Field(sa_column=_money())


class Account(SQLModel, table=True):
    """A ledger account; `balance` is the sum of its postings (debit +), kept in step."""

    __tablename__ = "accounts"
    # `owner` is a merchant, a channel or "platform" by kind: no foreign key can say so.
    __table_args__ = (
        _one_of("ck_accounts_kind", "kind", AccountKind),
        CheckConstraint(
            "id = kind || ':' || owner || ':' || currency", name="ck_accounts_id_parts"
        ),
        # Debit-positive: these credit-normal accounts hold money while <= 0.
        CheckConstraint(
            f"kind NOT IN ({_listed(NEVER_NEGATIVE_ACCOUNTS)}) OR balance <= 0",
            name="ck_accounts_held_money_not_negative",
        ),
        # For postings' foreign key: a posting's currency is its account's.
        UniqueConstraint("id", "currency", name="uq_accounts_id_currency"),
    )

    id: str = Field(primary_key=True)  # "{kind}:{owner}:{currency}"
    kind: str = Field(index=True)
    owner: str = Field(index=True)
    currency: str
    balance: int = Field(default=0, sa_column=_money())
    updated_at: datetime


class JournalEntry(SQLModel, table=True):
    """A balanced, immutable ledger movement; the id is its idempotency key."""

    __tablename__ = "journal_entries"
    # A merchant's entries, newest first, page by page (the merchant ledger and statements).
    __table_args__ = (
        Index("ix_journal_entries_merchant_time", "merchant_id", "created_at", "id"),
        _one_of("ck_journal_entries_kind", "kind", EntryKind),
        CheckConstraint(
            "(kind = 'reversal' AND reverses_entry_id IS NOT NULL)"
            " OR (kind <> 'reversal' AND reverses_entry_id IS NULL)",
            name="ck_journal_entries_reversal",
        ),
        # An entry is reversed once at most.
        UniqueConstraint("reverses_entry_id", name="uq_journal_entries_reverses"),
        _references("fk_journal_entries_reverses", "reverses_entry_id", "journal_entries.id"),
        # Entries are posted for an order read (and locked) in the same transaction, or
        # for a merchant's payout; payouts name the merchant of their statement.
        _references("fk_journal_entries_order", "order_id", "orders.id"),
        _references("fk_journal_entries_merchant", "merchant_id", "merchants.id"),
    )

    id: str = Field(primary_key=True)
    order_id: str | None = Field(default=None, index=True)
    merchant_id: str | None = Field(default=None, index=True)
    kind: str  # domain.ledger.EntryKind
    currency: str
    reverses_entry_id: str | None = None
    created_at: datetime = Field(index=True)


class Posting(SQLModel, table=True):
    """One leg of an entry: debit positive, credit negative; an entry's legs sum to zero."""

    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="ck_postings_amount_not_zero"),
        ForeignKeyConstraint(
            ["account", "currency"],
            ["accounts.id", "accounts.currency"],
            name="fk_postings_account_currency",
        ),
        # An account's postings in the order they were committed: a statement's range
        # (db.settlement) is a range of it.
        Index("ix_postings_account_id", "account", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    entry_id: str = Field(index=True, foreign_key="journal_entries.id")
    account: str = Field(foreign_key="accounts.id")
    currency: str
    amount: int = Field(sa_column=_money())


class ChannelNotification(SQLModel, table=True):
    """Every verified notification, stored raw once it was handed to its saga: a message id
    stored here is acknowledged again and never acted on again (api/routes/notify.py)."""

    __tablename__ = "channel_notifications"

    id: str = Field(primary_key=True)  # "{channel}:{notification id}"
    channel: str
    # The order the message is about, or for the bank's a payout id: no foreign key.
    order_id: str = Field(index=True)
    kind: str
    raw_body: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime


class PartyNotification(SQLModel, table=True):
    """A message to the buyer or the merchant about their order; buyers read theirs via the API."""

    __tablename__ = "party_notifications"
    # `recipient_id` is a user or a merchant by `recipient`: no foreign key can say so.
    __table_args__ = (
        _one_of("ck_party_notifications_recipient", "recipient", ("buyer", "merchant")),
        _references("fk_party_notifications_order", "order_id", "orders.id"),
    )

    id: str = Field(primary_key=True)  # "{order_id}:{recipient}:{event}"
    order_id: str = Field(index=True)
    recipient: str  # buyer | merchant
    recipient_id: str | None = Field(default=None, index=True)  # the buyer's or merchant's id
    event: str
    created_at: datetime
    read_at: datetime | None = None


class Review(SQLModel, table=True):
    """A buyer's review of a completed order: one per order."""

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint("rating >= 1 AND rating <= 5", name="ck_reviews_rating"),
        _references("fk_reviews_merchant", "merchant_id", "merchants.id"),
        _references("fk_reviews_buyer", "buyer_id", "users.id"),
    )

    order_id: str = Field(primary_key=True, foreign_key="orders.id")
    merchant_id: str = Field(index=True)
    buyer_id: str = Field(index=True)
    rating: int  # 1..5
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime


class WebhookEvent(SQLModel, table=True):
    """An event for a merchant's webhook endpoint; the id is the same on every delivery."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        _one_of("ck_webhook_events_type", "type", EventType),
        CheckConstraint("attempts >= 0", name="ck_webhook_events_attempts"),
        _references("fk_webhook_events_merchant", "merchant_id", "merchants.id"),
        _references("fk_webhook_events_order", "order_id", "orders.id"),
    )

    id: str = Field(primary_key=True)  # derived from the order and the event (domain.keys)
    merchant_id: str = Field(index=True)
    order_id: str | None = Field(default=None, index=True)
    type: str  # order.paid | order.refunded | order.closed
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the JSON body sent
    attempts: int = 0
    delivered_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime


class IdempotencyKey(SQLModel, table=True):
    """The first response to a POST with an Idempotency-Key, replayed on every repeat."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # A key binds one new order id; two keys never share one.
        UniqueConstraint("order_id", name="uq_idempotency_keys_order"),
        CheckConstraint(
            "(status_code IS NULL AND response_body IS NULL)"
            " OR (status_code IS NOT NULL AND response_body IS NOT NULL)",
            name="ck_idempotency_keys_response",
        ),
    )

    key: str = Field(primary_key=True)  # "{role}:{caller id}:{key}": each caller's own
    request_hash: str
    # Claimed before the saga records the order, and never recorded if the saga rejects
    # it (its coupon was taken meanwhile): no foreign key to orders.
    order_id: str
    status_code: int | None = None
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime


class Statement(SQLModel, table=True):
    """A merchant's settlement for one day and currency: what it covers and what is paid."""

    __tablename__ = "statements"
    __table_args__ = (
        UniqueConstraint("merchant_id", "currency", "sequence", name="uq_statements_sequence"),
        CheckConstraint("sequence >= 1", name="ck_statements_sequence_positive"),
        # Opening and closing go negative while a clawback is recovered; refunds may be
        # negative when a refund stated earlier failed back into available.
        CheckConstraint(
            "gross_amount >= 0 AND channel_fee_amount >= 0 AND commission_amount >= 0"
            " AND returned_amount >= 0 AND clawback_amount >= 0 AND payout_amount >= 0"
            " AND order_count >= 0",
            name="ck_statements_amounts_not_negative",
        ),
        CheckConstraint(
            "opening_balance + gross_amount - channel_fee_amount - commission_amount"
            " - refunded_amount + returned_amount - payout_amount = closing_balance",
            name="ck_statements_add_up",
        ),
        _references("fk_statements_merchant", "merchant_id", "merchants.id"),
    )

    id: str = Field(primary_key=True)  # "{merchant}:{day}:{currency}"
    merchant_id: str = Field(index=True)
    day: str  # ISO date of the business day it settles
    currency: str
    sequence: int  # 1, 2, ... per (merchant, currency): each opens with the previous closing
    cutoff: datetime  # entries before this instant are covered
    opening_balance: int = Field(sa_column=_money())  # available before its entries
    gross_amount: int = Field(sa_column=_money())
    channel_fee_amount: int = Field(sa_column=_money())
    commission_amount: int = Field(sa_column=_money())
    refunded_amount: int = Field(sa_column=_money())  # merchant's part of refunds
    returned_amount: int = Field(sa_column=_money())  # earlier payouts the bank refused
    clawback_amount: int = Field(sa_column=_money())  # a negative opening recovered
    payout_amount: int = Field(sa_column=_money())
    closing_balance: int = Field(sa_column=_money())  # carried to the next statement
    order_count: int
    created_at: datetime


# The last posting on the merchant's available balance a statement covers (db.settlement:
# its range begins after the highest of the account's statements before it; revision
# 0016); NULL on a statement made before 0016 but the account's latest, whose coverage is
# what statement_entries lists. Not mapped on Statement: the ORM never reads it, so the
# books read at an earlier revision (a downgrade) are read by the same models.
SQLModel.metadata.tables["statements"].append_column(
    Column("covers_through", BigInteger, nullable=True)
)


class StatementEntry(SQLModel, table=True):
    """An entry covered by a statement made before revision 0016 (a statement covers a
    range of postings since: db.settlement); the primary key made it covered at most once."""

    __tablename__ = "statement_entries"

    entry_id: str = Field(primary_key=True, foreign_key="journal_entries.id")
    statement_id: str = Field(index=True, foreign_key="statements.id")


class Payout(SQLModel, table=True):
    """A bank transfer of a statement's payout; its id is the bank's idempotency key."""

    __tablename__ = "payouts"
    __table_args__ = (
        _one_of("ck_payouts_status", "status", PayoutStatus),
        CheckConstraint("amount > 0", name="ck_payouts_amount_positive"),
        UniqueConstraint("statement_id", name="uq_payouts_statement"),
        # Implied by the key; there for payout_conversions' foreign key (id, currency).
        UniqueConstraint("id", "currency", name="uq_payouts_id_currency"),
        _references("fk_payouts_merchant", "merchant_id", "merchants.id"),
        # The few the bank has not answered, for the state gauges read on every scrape.
        Index(
            "ix_payouts_pending",
            "currency",
            "created_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: str = Field(primary_key=True)
    statement_id: str = Field(index=True, foreign_key="statements.id")
    merchant_id: str = Field(index=True)
    amount: int = Field(sa_column=_money())
    currency: str
    status: str  # pending | paid | failed
    failure_reason: str | None = None
    bank_reference: str | None = None
    created_at: datetime
    updated_at: datetime


class PayoutConversion(SQLModel, table=True):
    """A payout the bank converts for a merchant settled in another currency: the payout's
    `currency` leaves our account, the merchant is credited in `credit_currency`. The row
    is made with the payout; the credited amount and the bank's rate once the bank says."""

    __tablename__ = "payout_conversions"
    __table_args__ = (
        CheckConstraint("credit_currency <> currency", name="ck_payout_conversions_currencies"),
        CheckConstraint(
            "(credited_amount IS NULL AND credit_rate IS NULL)"
            " OR (credited_amount > 0 AND credit_rate IS NOT NULL)",
            name="ck_payout_conversions_credited",
        ),
        ForeignKeyConstraint(
            ["payout_id", "currency"],
            ["payouts.id", "payouts.currency"],
            name="fk_payout_conversions_payout",
        ),
    )

    payout_id: str = Field(primary_key=True)
    currency: str  # the payout's
    credit_currency: str
    credited_amount: int | None = Field(default=None, sa_column=_money(nullable=True))
    credit_rate: str | None = None  # credit_currency units per payout unit, a decimal string
    updated_at: datetime


# -- Reconciliation (domain.reconciliation): a run per channel and day, its exceptions --


class ReconciliationRun(SQLModel, table=True):
    """One channel's bill for one day matched against our records: one row per channel-day,
    however often the run is started."""

    __tablename__ = "reconciliation_runs"
    __table_args__ = (
        UniqueConstraint("channel", "day", name="uq_reconciliation_runs_channel_day"),
        _one_of("ck_reconciliation_runs_status", "status", RunStatus),
        CheckConstraint(
            "bill_lines >= 0 AND exception_count >= 0 AND auto_resolved_count >= 0"
            " AND auto_resolved_count <= exception_count",
            name="ck_reconciliation_runs_counts",
        ),
        CheckConstraint(
            "(status = 'finished') = (finished_at IS NOT NULL)",
            name="ck_reconciliation_runs_finished_at",
        ),
    )

    id: str = Field(primary_key=True)  # "{channel}:{day}"
    channel: str
    day: str  # ISO date, the channel's business day (domain.reconciliation.day_window)
    status: str  # running | finished
    bill_lines: int = 0
    exception_count: int = 0
    auto_resolved_count: int = 0
    started_at: datetime
    finished_at: datetime | None = None


class ReconciliationException(SQLModel, table=True):
    """A difference between a bill and our records, with both sides' figures; closed by
    the worker (auto_resolved) or by an operator with a reason (resolved), never silently."""

    __tablename__ = "reconciliation_exceptions"
    __table_args__ = (
        Index("ix_reconciliation_exceptions_list", "created_at", "id"),
        _one_of("ck_reconciliation_exceptions_type", "type", DiscrepancyType),
        _one_of("ck_reconciliation_exceptions_status", "status", ExceptionStatus),
        CheckConstraint(
            "line_kind IS NULL OR line_kind IN ('payment', 'refund', 'sweep')",
            name="ck_reconciliation_exceptions_line_kind",
        ),
        CheckConstraint(
            "(ours_amount IS NULL OR ours_amount >= 0) AND (theirs_amount IS NULL"
            " OR theirs_amount >= 0) AND (ours_fee IS NULL OR ours_fee >= 0)"
            " AND (theirs_fee IS NULL OR theirs_fee >= 0)",
            name="ck_reconciliation_exceptions_amounts",
        ),
        # Closed means a reason and when; an operator's also who.
        CheckConstraint(
            "(status <> 'open' OR (resolution_reason IS NULL AND resolved_at IS NULL"
            " AND resolved_by IS NULL AND adjustment_entry_id IS NULL))"
            " AND (status <> 'auto_resolved' OR (resolution_reason IS NOT NULL"
            " AND resolved_at IS NOT NULL AND resolved_by IS NULL"
            " AND adjustment_entry_id IS NULL))"
            " AND (status <> 'resolved' OR (resolution_reason IS NOT NULL"
            " AND resolved_at IS NOT NULL AND resolved_by IS NOT NULL))",
            name="ck_reconciliation_exceptions_resolution",
        ),
        _references("fk_reconciliation_exceptions_run", "run_id", "reconciliation_runs.id"),
        _references(
            "fk_reconciliation_exceptions_entry", "adjustment_entry_id", "journal_entries.id"
        ),
        _references("fk_reconciliation_exceptions_resolver", "resolved_by", "users.id"),
        UniqueConstraint("adjustment_entry_id", name="uq_reconciliation_exceptions_entry"),
    )

    id: str = Field(primary_key=True)  # domain.reconciliation.exception_id
    run_id: str = Field(index=True)
    channel: str = Field(index=True)
    day: str = Field(index=True)
    type: str = Field(index=True)  # DiscrepancyType
    line_kind: str | None = None  # payment | refund | sweep; None for the whole bill
    reference: str = Field(index=True)
    order_id: str | None = Field(default=None, index=True)
    currency: str | None = None
    ours_amount: int | None = Field(default=None, sa_column=_money(nullable=True))
    theirs_amount: int | None = Field(default=None, sa_column=_money(nullable=True))
    ours_fee: int | None = Field(default=None, sa_column=_money(nullable=True))
    theirs_fee: int | None = Field(default=None, sa_column=_money(nullable=True))
    ours_status: str | None = None
    channel_txn_id: str | None = None
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    auto_action: str | None = None  # AutoAction the worker may take; None: an operator's
    status: str = Field(index=True)  # open | auto_resolved | resolved
    resolution_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    resolved_by: str | None = None  # the operator (users.id)
    resolved_at: datetime | None = None
    adjustment_entry_id: str | None = None
    created_at: datetime


# -- cross-border (revision 0009_cross_border) -------------------------------------------


class MerchantFxTerms(SQLModel, table=True):
    """A merchant's cross-border terms; a merchant without a row has no markup and sells to
    any country. Its own table so the merchants table stays as every earlier revision
    wrote it."""

    __tablename__ = "merchant_fx_terms"
    __table_args__ = (
        _references("fk_merchant_fx_terms_merchant", "merchant_id", "merchants.id"),
        CheckConstraint(
            f"fx_markup_bps >= 0 AND fx_markup_bps <= {MAX_MARKUP_BPS}",
            name="ck_merchant_fx_terms_markup",
        ),
    )

    merchant_id: str = Field(primary_key=True)
    fx_markup_bps: int = 0  # on quoted rates, platform revenue
    buyer_countries: str | None = None  # comma-separated ISO 3166 alpha-2; None: any
    price_currencies: str | None = None  # comma-separated ISO 4217 it prices in; None: any
    # Payouts credited in the merchant's settlement currency, converted by the bank;
    # False: each in its own currency (as every merchant before revision 0013).
    convert_payouts: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class OrderQuote(SQLModel, table=True):
    """The locked price of an order paid in another currency (domain.fx.quotes): rates and
    the rounding residual are exact decimal text; one quote per order."""

    __tablename__ = "order_quotes"
    __table_args__ = (
        UniqueConstraint("order_id", name="uq_order_quotes_order"),
        _references("fk_order_quotes_order", "order_id", "orders.id"),
        CheckConstraint(
            "price_amount > 0 AND presentment_amount > 0 AND markup_amount >= 0"
            " AND markup_amount < presentment_amount",
            name="ck_order_quotes_amounts",
        ),
        CheckConstraint(
            f"markup_bps >= 0 AND markup_bps <= {MAX_MARKUP_BPS}", name="ck_order_quotes_markup"
        ),
        CheckConstraint(
            "price_currency <> presentment_currency", name="ck_order_quotes_currencies"
        ),
        CheckConstraint("expires_at > created_at", name="ck_order_quotes_expiry"),
    )

    id: str = Field(primary_key=True)
    order_id: str
    price_currency: str
    price_amount: int = Field(sa_column=_money())
    presentment_currency: str
    presentment_amount: int = Field(sa_column=_money())
    mid_rate: str  # Decimal as text: price currency -> presentment currency
    customer_rate: str  # mid * (1 + markup_bps / 10 000), exactly
    markup_bps: int
    markup_amount: int = Field(sa_column=_money())  # presentment minor units, revenue
    mid_residual: str  # Decimal as text, presentment minor units (domain.fx.conversion)
    rate_source: str
    rate_as_of: datetime
    created_at: datetime
    expires_at: datetime


class PresentmentRefund(SQLModel, table=True):
    """What a refund of a quoted order gives the buyer back in their own currency; the
    refund row keeps the price-currency amount and its split parts."""

    __tablename__ = "quoted_refunds"
    __table_args__ = (
        _references("fk_quoted_refunds_refund", "refund_id", "refunds.id"),
        _references("fk_quoted_refunds_quote", "quote_id", "order_quotes.id"),
        CheckConstraint(
            "presentment_amount > 0 AND markup_returned >= 0"
            " AND markup_returned <= presentment_amount",
            name="ck_quoted_refunds_amounts",
        ),
    )

    refund_id: str = Field(primary_key=True)
    quote_id: str = Field(index=True)
    presentment_currency: str
    presentment_amount: int = Field(sa_column=_money())
    markup_returned: int = Field(sa_column=_money())
    residual: str  # Decimal as text, presentment minor units, the platform's gain


class FxRealisation(SQLModel, table=True):
    """The channel converted a quoted order's open money at its own rate: what it gave,
    and how the difference was booked (the FX_REALISED entries of the same id)."""

    __tablename__ = "fx_realisations"
    __table_args__ = (
        _references("fk_fx_realisations_order", "order_id", "orders.id"),
        CheckConstraint(
            "(presentment_amount > 0 AND settled_amount > 0)"
            " OR (presentment_amount < 0 AND settled_amount < 0)",
            name="ck_fx_realisations_direction",
        ),
        Index("ix_fx_realisations_time_channel", "created_at", "channel"),
    )

    id: str = Field(primary_key=True)  # the caller's key: one realisation per key
    order_id: str = Field(index=True)
    channel: str
    presentment_currency: str
    presentment_amount: int = Field(sa_column=_money())
    settlement_currency: str
    settled_amount: int = Field(sa_column=_money())
    markup_amount: int = Field(sa_column=_money())
    rounding_amount: int = Field(sa_column=_money())
    gain_loss_amount: int = Field(sa_column=_money())  # credit-positive: a gain
    created_at: datetime


# -- the wallets' own conversions (revision 0010_channel_conversions) ---------------------


class ChannelConversion(SQLModel, table=True):
    """What a wallet reported converting for an order priced in a foreign currency: the
    Chinese buyer paid (or was given back) `payer_amount` of `payer_currency` for
    `price_amount` of the order's currency, at the channel's `channel_rate`. The channel
    converts and settles to us in the price currency, so this is a record, not a position
    of ours: nothing is booked from it. One row per payment attempt paid, one per refund."""

    __tablename__ = "channel_conversions"
    __table_args__ = (
        _references("fk_channel_conversions_order", "order_id", "orders.id"),
        _one_of("ck_channel_conversions_kind", "kind", ("payment", "refund")),
        CheckConstraint(
            "price_amount > 0 AND payer_amount > 0", name="ck_channel_conversions_amounts"
        ),
        CheckConstraint(
            "price_currency <> payer_currency", name="ck_channel_conversions_currencies"
        ),
        Index("ix_channel_conversions_time_channel", "created_at", "channel"),
    )

    id: str = Field(primary_key=True)  # "payment:{order}:{attempt}" or "refund:{refund}"
    order_id: str = Field(index=True)
    kind: str  # payment | refund
    refund_id: str | None = None
    channel: str
    price_currency: str
    price_amount: int = Field(sa_column=_money())
    payer_currency: str
    payer_amount: int = Field(sa_column=_money())
    channel_rate: str  # Decimal as text: payer units per one price unit, as reported
    created_at: datetime


# -- channel transfers as posted (revision 0011_channel_sweeps) ---------------------------


class ChannelSweep(SQLModel, table=True):
    """A channel's transfer into our bank of one business day's takings in one currency,
    as posted (the CHANNEL_SWEEP entry `entry_id`): what reconciliation matches the bill's
    sweep lines of that channel-day against."""

    __tablename__ = "channel_sweeps"
    __table_args__ = (
        Index("ix_channel_sweeps_channel_day", "channel", "day"),
        _references("fk_channel_sweeps_entry", "entry_id", "journal_entries.id"),
    )

    transfer_id: str = Field(primary_key=True)  # the bank's id of the transfer
    channel: str
    day: str  # ISO date, the channel's business day it settles (its bill's)
    currency: str  # what the bank received
    gross: int = Field(sa_column=_money())
    fees: int = Field(sa_column=_money())  # what the channel kept
    refunds: int = Field(sa_column=_money())
    net: int = Field(sa_column=_money())  # received; negative: the channel took it
    entry_id: str | None = None  # None: nothing moved, nothing posted
    recorded_at: datetime
