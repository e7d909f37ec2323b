"""Double-entry rules: the accounts, and which of them each business event moves.

A posting is (account, amount) with debits positive and credits negative; the
postings of one entry sum to zero per currency. An account is identified by
(kind, owner, currency), written `kind:owner:currency`.

    channel_clearing:{channel}     asset      what the channel holds for us
    bank:platform                  asset      our bank account; payouts leave from it
    merchant_pending:{merchant}    liability  merchant's share of orders not yet completed
    merchant_available:{merchant}  liability  completed, not yet paid out (negative = clawback)
    merchant_in_transit:{merchant} liability  paid out, the bank has not confirmed yet
    refunds_in_flight:{channel}    liability  refunds asked of the channel, not yet confirmed
    platform_commission:platform   revenue    our commission
    channel_fee:{channel}          liability  what the channel deducts for its service
    late_payments:{channel}        liability  paid after its order ended; owed to the buyer
    fx_position:platform           asset      currency bought or sold in conversions
    fx_markup_revenue:platform     revenue    our markup on a quoted exchange rate
    fx_gain_loss:platform          revenue    realised difference between quoted and settled rates
    fx_rounding:platform           revenue    the sub-unit remainders conversions round away
    adjustments:{reason}           equity     an operator's approved correction (reconciliation)

Assets are shown debit-positive; every other kind credit-positive (its "normal
balance"). A merchant sees pending / available / in transit.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from domain.split import Split


class AccountKind(enum.StrEnum):
    CHANNEL_CLEARING = "channel_clearing"
    BANK = "bank"
    MERCHANT_PENDING = "merchant_pending"
    MERCHANT_AVAILABLE = "merchant_available"
    MERCHANT_IN_TRANSIT = "merchant_in_transit"
    REFUNDS_IN_FLIGHT = "refunds_in_flight"
    PLATFORM_COMMISSION = "platform_commission"
    CHANNEL_FEE = "channel_fee"
    LATE_PAYMENTS = "late_payments"
    FX_POSITION = "fx_position"
    FX_MARKUP_REVENUE = "fx_markup_revenue"
    FX_GAIN_LOSS = "fx_gain_loss"
    FX_ROUNDING = "fx_rounding"
    ADJUSTMENTS = "adjustments"


class EntryKind(enum.StrEnum):
    SETTLEMENT = "settlement"  # the buyer paid: clearing in, split credited
    REVERSAL = "reversal"  # the mirror of an earlier entry (saga compensation)
    FUNDS_RELEASED = "funds_released"  # order completed: pending -> available
    REFUND_RESERVED = "refund_reserved"  # refund asked: split parts -> refunds in flight
    REFUND_COMPLETED = "refund_completed"  # channel confirmed: in flight -> out of clearing
    REFUND_FAILED = "refund_failed"  # channel refused: the parts go back where they were
    PAYOUT_STARTED = "payout_started"  # available -> in transit
    PAYOUT_PAID = "payout_paid"  # bank confirmed: in transit -> out of the bank
    PAYOUT_RETURNED = "payout_returned"  # bank refused: in transit -> available
    LATE_PAYMENT_RECEIVED = "late_payment_received"  # paid after the order ended: owed back
    LATE_PAYMENT_REFUNDED = "late_payment_refunded"  # given back: the debt leaves clearing
    CHANNEL_SWEEP = "channel_sweep"  # the channel paid us what it held, net of its fees
    FX_CONVERSION = "fx_conversion"  # money changed currency through the FX positions
    FX_REALISED = "fx_realised"  # the channel settled at its rate: the difference is realised
    ADJUSTMENT = "adjustment"  # an operator's approved correction


DEBIT_NORMAL = frozenset({AccountKind.CHANNEL_CLEARING, AccountKind.BANK, AccountKind.FX_POSITION})
MERCHANT_BALANCES = (
    AccountKind.MERCHANT_PENDING,
    AccountKind.MERCHANT_AVAILABLE,
    AccountKind.MERCHANT_IN_TRANSIT,
)
PLATFORM = "platform"


class PostingLine(NamedTuple):
    account: str
    amount: int  # debit > 0, credit < 0


def account_id(kind: AccountKind, owner: str, currency: str) -> str:
    return f"{kind.value}:{owner}:{currency}"


def account_parts(account: str) -> tuple[AccountKind, str, str]:
    """(kind, owner, currency) of an account id; owners never contain ':'."""
    kind, owner, currency = account.split(":")
    return AccountKind(kind), owner, currency


def normal_balance(kind: AccountKind, debit_balance: int) -> int:
    """The balance as its holder reads it: assets debit-positive, the rest credit-positive."""
    return debit_balance if kind in DEBIT_NORMAL else -debit_balance


def may_go_negative(kind: AccountKind, entry: EntryKind) -> bool:
    """Whether `entry` may leave an account of `kind` below zero (in its normal balance).

    Money held for someone cannot go below zero, with one exception: a refund after
    payout takes the merchant's available balance negative, and its next settlements
    recover it (clawback). A payout can never overdraw it.
    """
    if kind in (
        AccountKind.MERCHANT_PENDING,
        AccountKind.MERCHANT_IN_TRANSIT,
        AccountKind.REFUNDS_IN_FLIGHT,
        AccountKind.LATE_PAYMENTS,
    ):
        return False
    if kind == AccountKind.MERCHANT_AVAILABLE:
        return entry == EntryKind.REFUND_RESERVED
    return True


def is_balanced(postings: Sequence[PostingLine]) -> bool:
    """True when the postings sum to zero in every currency."""
    totals: dict[str, int] = defaultdict(int)
    for posting in postings:
        totals[account_parts(posting.account)[2]] += posting.amount
    return all(total == 0 for total in totals.values())


def _lines(*lines: PostingLine) -> list[PostingLine]:
    return [line for line in lines if line.amount != 0]


def settlement_postings(
    channel: str, merchant_id: str, currency: str, split: Split
) -> list[PostingLine]:
    """The buyer paid: clearing is debited; merchant (pending), platform and channel credited."""
    return _lines(
        PostingLine(
            account_id(AccountKind.CHANNEL_CLEARING, channel, currency), split.payable_amount
        ),
        PostingLine(
            account_id(AccountKind.MERCHANT_PENDING, merchant_id, currency),
            -split.merchant_net_amount,
        ),
        PostingLine(
            account_id(AccountKind.PLATFORM_COMMISSION, PLATFORM, currency),
            -split.commission_amount,
        ),
        PostingLine(
            account_id(AccountKind.CHANNEL_FEE, channel, currency), -split.channel_fee_amount
        ),
    )


def release_postings(merchant_id: str, currency: str, amount: int) -> list[PostingLine]:
    """The order completed: the merchant's remaining share moves from pending to available."""
    return _lines(
        PostingLine(account_id(AccountKind.MERCHANT_PENDING, merchant_id, currency), amount),
        PostingLine(account_id(AccountKind.MERCHANT_AVAILABLE, merchant_id, currency), -amount),
    )


def refund_reserve_postings(
    channel: str, merchant_id: str, currency: str, parts: Split, *, released: bool
) -> list[PostingLine]:
    """A refund is asked: each part of it leaves its holder and waits in refunds in flight.

    The merchant's part comes from pending before the order completes, from available
    after (which may take it negative: clawback).
    """
    merchant_kind = AccountKind.MERCHANT_AVAILABLE if released else AccountKind.MERCHANT_PENDING
    return _lines(
        PostingLine(account_id(merchant_kind, merchant_id, currency), parts.merchant_net_amount),
        PostingLine(
            account_id(AccountKind.PLATFORM_COMMISSION, PLATFORM, currency), parts.commission_amount
        ),
        PostingLine(
            account_id(AccountKind.CHANNEL_FEE, channel, currency), parts.channel_fee_amount
        ),
        PostingLine(
            account_id(AccountKind.REFUNDS_IN_FLIGHT, channel, currency), -parts.payable_amount
        ),
    )


def refund_complete_postings(channel: str, currency: str, amount: int) -> list[PostingLine]:
    """The channel paid the buyer back: the money leaves clearing."""
    return _lines(
        PostingLine(account_id(AccountKind.REFUNDS_IN_FLIGHT, channel, currency), amount),
        PostingLine(account_id(AccountKind.CHANNEL_CLEARING, channel, currency), -amount),
    )


def payout_start_postings(merchant_id: str, currency: str, amount: int) -> list[PostingLine]:
    return _lines(
        PostingLine(account_id(AccountKind.MERCHANT_AVAILABLE, merchant_id, currency), amount),
        PostingLine(account_id(AccountKind.MERCHANT_IN_TRANSIT, merchant_id, currency), -amount),
    )


def payout_paid_postings(merchant_id: str, currency: str, amount: int) -> list[PostingLine]:
    return _lines(
        PostingLine(account_id(AccountKind.MERCHANT_IN_TRANSIT, merchant_id, currency), amount),
        PostingLine(account_id(AccountKind.BANK, PLATFORM, currency), -amount),
    )


def payout_return_postings(merchant_id: str, currency: str, amount: int) -> list[PostingLine]:
    return reversal_postings(payout_start_postings(merchant_id, currency, amount))


def reversal_postings(postings: Sequence[PostingLine]) -> list[PostingLine]:
    return [PostingLine(p.account, -p.amount) for p in postings]


def late_payment_received_postings(channel: str, currency: str, amount: int) -> list[PostingLine]:
    """A payment reached an order that had ended: the channel holds it, and we owe it back."""
    return _lines(
        PostingLine(account_id(AccountKind.CHANNEL_CLEARING, channel, currency), amount),
        PostingLine(account_id(AccountKind.LATE_PAYMENTS, channel, currency), -amount),
    )


def late_payment_refunded_postings(channel: str, currency: str, amount: int) -> list[PostingLine]:
    """The channel gave a late payment back: the debt is settled and the money leaves clearing."""
    return reversal_postings(late_payment_received_postings(channel, currency, amount))


def unsettled_refund_postings(channel: str, currency: str, amount: int) -> list[PostingLine]:
    """Money the channel holds for an order whose settlement is not (or no longer) in the
    books, asked back: it enters clearing and waits in refunds in flight.

    A compensation whose payment was never captured (a suspended merchant), or one whose
    settlement entry an earlier version reversed at once, gives back money that no split
    holds; the channel still holds it until it confirms the refund.
    """
    return _lines(
        PostingLine(account_id(AccountKind.CHANNEL_CLEARING, channel, currency), amount),
        PostingLine(account_id(AccountKind.REFUNDS_IN_FLIGHT, channel, currency), -amount),
    )


def channel_sweep_postings(
    channel: str, currency: str, *, gross: int, fees: int, refunds: int
) -> list[PostingLine]:
    """The channel paid our bank what it collected less what it paid back and its fees.

    bank +net, channel_fee +fees (the debt to the channel is paid: it kept them),
    clearing -(gross - refunds). A day whose refunds and fees exceed its payments has a
    negative net: the channel takes it from our bank account.
    """
    net = gross - fees - refunds
    return _lines(
        PostingLine(account_id(AccountKind.BANK, PLATFORM, currency), net),
        PostingLine(account_id(AccountKind.CHANNEL_FEE, channel, currency), fees),
        PostingLine(
            account_id(AccountKind.CHANNEL_CLEARING, channel, currency), -(gross - refunds)
        ),
    )
