"""SQLModel tables: the database is a projection of the sagas plus the ledger.

Amounts are BIGINT minor units. Rates are stored as decimal strings so that no
database float ever touches them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel


def _money(nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(BigInteger, nullable=nullable)


class Merchant(SQLModel, table=True):
    __tablename__ = "merchants"

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

    order_id: str = Field(primary_key=True)
    coupon_code: str = Field(index=True, foreign_key="coupons.code")
    buyer_id: str | None = Field(default=None, index=True)
    status: str  # reserved | consumed | released
    updated_at: datetime


class Order(SQLModel, table=True):
    __tablename__ = "orders"

    id: str = Field(primary_key=True)
    merchant_id: str = Field(index=True, foreign_key="merchants.id")
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


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"

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
    (db.payments). Only the current attempt is ever paid.
    """

    __tablename__ = "payments"

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


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"

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

    refund_id: str = Field(primary_key=True, foreign_key="refunds.id")
    line_no: int = Field(primary_key=True)
    quantity: int
    amount: int = Field(sa_column=_money())


class Account(SQLModel, table=True):
    """A ledger account; `balance` is the sum of its postings (debit +), kept in step."""

    __tablename__ = "accounts"

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
    __table_args__ = (Index("ix_journal_entries_merchant_time", "merchant_id", "created_at", "id"),)

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

    id: int | None = Field(default=None, primary_key=True)
    entry_id: str = Field(index=True, foreign_key="journal_entries.id")
    account: str = Field(index=True, foreign_key="accounts.id")
    currency: str
    amount: int = Field(sa_column=_money())


class ChannelNotification(SQLModel, table=True):
    """Every verified notification, stored raw before it is acted upon."""

    __tablename__ = "channel_notifications"

    id: str = Field(primary_key=True)  # "{channel}:{notification id}"
    channel: str
    order_id: str = Field(index=True)
    kind: str
    raw_body: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime


class PartyNotification(SQLModel, table=True):
    """A message to the buyer or the merchant about their order; buyers read theirs via the API."""

    __tablename__ = "party_notifications"

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

    order_id: str = Field(primary_key=True, foreign_key="orders.id")
    merchant_id: str = Field(index=True)
    buyer_id: str = Field(index=True)
    rating: int  # 1..5
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime


class WebhookEvent(SQLModel, table=True):
    """An event for a merchant's webhook endpoint; the id is the same on every delivery."""

    __tablename__ = "webhook_events"

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

    key: str = Field(primary_key=True)
    request_hash: str
    order_id: str
    status_code: int | None = None
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime


class Statement(SQLModel, table=True):
    """A merchant's settlement for one day and currency: what it covers and what is paid."""

    __tablename__ = "statements"

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


class StatementEntry(SQLModel, table=True):
    """An entry covered by a statement; the primary key makes it covered at most once."""

    __tablename__ = "statement_entries"

    entry_id: str = Field(primary_key=True, foreign_key="journal_entries.id")
    statement_id: str = Field(index=True, foreign_key="statements.id")


class Payout(SQLModel, table=True):
    """A bank transfer of a statement's payout; its id is the bank's idempotency key."""

    __tablename__ = "payouts"

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
