"""A merchant statement's numbers, from the entries it covers.

Every number is exact integer arithmetic on minor units; nothing is rounded
here (the rounding happened once, in each order's split and each refund's parts).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, ConfigDict

from domain.ledger import EntryKind
from domain.polling import PollTimings
from domain.split import Split


class PayoutStatus(enum.StrEnum):
    PENDING = "pending"  # asked of the bank; the money is in transit
    PAID = "paid"
    FAILED = "failed"  # the bank refused; the money is back in available


class StatementTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    opening_balance: int
    gross_amount: int
    channel_fee_amount: int
    commission_amount: int
    refunded_amount: int
    returned_amount: int
    clawback_amount: int
    payout_amount: int
    closing_balance: int
    order_count: int


_COVERED_KINDS = frozenset(
    {
        EntryKind.FUNDS_RELEASED,
        EntryKind.REFUND_RESERVED,
        EntryKind.REFUND_FAILED,
        EntryKind.PAYOUT_RETURNED,
    }
)


def statement_totals(
    *,
    opening_balance: int,
    current_balance: int,
    entries: Sequence[tuple[str, int]],
    released_orders: Sequence[Split],
) -> StatementTotals:
    """Totals for a statement covering `entries` ((entry kind, amount on available)).

    `released_orders` are the full splits of the orders whose release it covers. The
    payout is what the statement finds available (opening plus its entries), but never
    more than the balance is now (a refund since the cutoff may have lowered it) and
    never below zero.
    """
    by_kind = {kind: 0 for kind in _COVERED_KINDS}
    for kind, amount in entries:
        if kind not in by_kind:
            raise ValueError(f"entry kind {kind} has no place in a statement")
        by_kind[EntryKind(kind)] += amount
    gross = sum(s.payable_amount for s in released_orders)
    fees = sum(s.channel_fee_amount for s in released_orders)
    commission = sum(s.commission_amount for s in released_orders)
    net = gross - fees - commission
    # The merchant's part of refunds: what its orders' releases fell short of their
    # net, plus refunds after release, less refunds that failed back into available.
    refunded = (
        net
        - by_kind[EntryKind.FUNDS_RELEASED]
        - by_kind[EntryKind.REFUND_RESERVED]
        - by_kind[EntryKind.REFUND_FAILED]
    )
    stated = opening_balance + sum(amount for _, amount in entries)
    payout = max(0, min(stated, current_balance))
    return StatementTotals(
        opening_balance=opening_balance,
        gross_amount=gross,
        channel_fee_amount=fees,
        commission_amount=commission,
        refunded_amount=refunded,
        returned_amount=by_kind[EntryKind.PAYOUT_RETURNED],
        clawback_amount=max(0, -opening_balance),
        payout_amount=payout,
        closing_balance=stated - payout,
        order_count=len(released_orders),
    )


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class SettlementRunInput(_Message):
    """Settle every merchant (or those listed) for `day`; None: the day before the run
    was scheduled."""

    day: date | None = None
    merchant_ids: tuple[str, ...] = ()
    polling: PollTimings = PollTimings()


class MerchantDay(_Message):
    merchant_id: str
    day: date
    polling: PollTimings = PollTimings()


class PayoutOrder(_Message):
    """A statement's payout, as the bank is to be asked for it."""

    payout_id: str
    statement_id: str
    merchant_id: str
    amount: int
    currency: str
    beneficiary: str


class PayoutOutcome(_Message):
    payout_id: str
    paid: bool
    bank_reference: str | None = None
    failure_reason: str | None = None


class MerchantSettlementView(_Message):
    merchant_id: str
    day: date
    statement_ids: tuple[str, ...] = ()
    payouts: tuple[PayoutOutcome, ...] = ()
    pending_payouts: tuple[str, ...] = ()


class SettlementProgress(_Message):
    day: date | None
    merchants: int = 0
    settled: int = 0
    already_settled: int = 0
