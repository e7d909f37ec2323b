"""What the ledger routes answer with: balances, entries, statements, payouts, accounts.

Every amount is integer minor units in the account's normal balance (credit-positive
for what we owe a merchant, debit-positive for assets), except `debit_balance` and
`debit_amount`, which are the raw debit-positive figures the ledger stores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel

from db.times import as_utc
from domain.ledger import AccountKind
from domain.settlement import StatementTotals

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class MerchantBalance(BaseModel):
    currency: str
    pending: int  # orders paid, not yet completed
    available: int  # completed, not yet paid out (negative: a clawback to recover)
    in_transit: int  # paid out, the bank has not confirmed yet


class MerchantBalances(BaseModel):
    merchant_id: str
    balances: list[MerchantBalance]


class EntryPosting(BaseModel):
    account: str
    kind: AccountKind
    amount: int


class LedgerEntry(BaseModel):
    """A journal entry with only the postings the reader may see (a merchant: its own)."""

    id: str
    kind: str
    currency: str
    order_id: str | None
    created_at: UtcDatetime
    postings: list[EntryPosting]


class LedgerEntryPage(BaseModel):
    data: list[LedgerEntry]
    has_more: bool
    next_cursor: str | None


class StatementOut(StatementTotals):
    """opening + gross - fees - commission - refunded + returned - payout = closing."""

    id: str
    merchant_id: str
    day: str
    currency: str
    cutoff: UtcDatetime
    created_at: UtcDatetime


class StatementPage(BaseModel):
    data: list[StatementOut]
    has_more: bool
    next_cursor: str | None


class PayoutOut(BaseModel):
    id: str
    statement_id: str
    merchant_id: str
    amount: int
    currency: str
    status: str
    failure_reason: str | None
    bank_reference: str | None
    # A merchant settled in another currency: the bank converts the payout into
    # `credit_currency` and says what it credited, at what rate (credit units per unit
    # of `currency`), once it has accepted the payout and reported back.
    credit_currency: str | None = None
    credited_amount: int | None = None
    credit_rate: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class StatementFx(BaseModel):
    """A quoted order's FX line: what its buyer paid in their currency at the quoted rate.

    The merchant's figures stay in the statement's currency (its price): the conversion,
    its markup and any rate move are the platform's, never the merchant's."""

    presentment_amount: int
    presentment_currency: str
    customer_rate: str  # presentment units per price unit, as quoted
    markup_bps: int
    # "paysaga": our quote (the figures above); "channel": a wallet converted the price at
    # its own rate (`customer_rate` is the channel's, no markup of ours, no FX of ours).
    converted_by: str = "paysaga"


class StatementOrder(BaseModel):
    """An order whose release the statement covers.

    gross - channel_fee - commission - refunded_before_release = released
    """

    order_id: str
    gross: int
    channel_fee: int
    commission: int
    refunded_before_release: int  # the merchant's part of refunds taken from pending
    released: int
    fx: StatementFx | None = None  # a quoted order: what the buyer paid


class StatementEntryOut(BaseModel):
    """Any other covered entry, with what it moved on the merchant's available balance."""

    entry_id: str
    kind: str
    order_id: str | None
    amount: int


class StatementDetail(StatementOut):
    payout: PayoutOut | None
    orders: list[StatementOrder]
    entries: list[StatementEntryOut]


class AccountOut(BaseModel):
    id: str
    kind: AccountKind
    owner: str
    currency: str
    balance: int
    debit_balance: int


class AccountPage(BaseModel):
    data: list[AccountOut]
    has_more: bool
    next_cursor: str | None


class AccountPosting(BaseModel):
    entry_id: str
    entry_kind: str
    order_id: str | None
    merchant_id: str | None
    amount: int
    debit_amount: int
    created_at: UtcDatetime


class AccountPostingPage(BaseModel):
    data: list[AccountPosting]
    has_more: bool
    next_cursor: str | None  # an entry id


class AccountDetail(BaseModel):
    account: AccountOut
    postings: AccountPostingPage


class CurrencyTotal(BaseModel):
    currency: str
    total: int  # sum of every posting (debit +); anything but 0 is a broken ledger


class TrialBalanceAccount(BaseModel):
    id: str
    kind: AccountKind
    owner: str
    currency: str
    balance: int


class TrialBalance(BaseModel):
    """`balanced`: every currency's postings sum to zero. `drift`: stored balances that
    differ from the sum of their postings (expected empty)."""

    currencies: list[CurrencyTotal]
    balanced: bool
    accounts: list[TrialBalanceAccount]
    drift: list[str]
