"""A channel's settlement: what it took on a day, less what it paid back and its fees,
paid into the platform's bank account at the sandbox bank.

Each channel settles a day on its own cycle (Alipay and WeChat Pay T+1, the card gateway
T+2; `channel_sweep_lag_days`) with one transfer per currency:

    gross    payments taken that day (late ones too: the channel took them)
    fees     its fee on each (round half up), less the fee it returns on refunds
    refunds  refunds it paid back that day
    net      gross - fees - refunds   (negative: it takes the difference from the bank)

A refund returns the fee in proportion to what is left of its payment, rounded half up,
exactly as `domain.split.split_refund` takes a refund's parts, so the last refund of a
payment returns what is left of its fee. The records are the bank's statement of the
transfers and the channel's report of its settlement.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from domain.money import apply_rate
from domain.split import Split, split_refund, subtract

if TYPE_CHECKING:
    from sandbox.store import PaymentRecord, RefundRecord

SweepStatus = Literal["credited"]


@dataclass(frozen=True)
class SweepRecord:
    transfer_id: str
    channel: str
    day: str  # ISO date of the takings, by the channel's clock (UTC)
    currency: str
    gross: int
    fees: int
    refunds: int
    net: int
    bank_reference: str
    credited_at: float
    status: SweepStatus = "credited"


def utc_day(at: float) -> date:
    return datetime.fromtimestamp(at, UTC).date()


def payment_fee(amount: int, fee_rate: Decimal) -> int:
    return apply_rate(amount, fee_rate)


def returned_fees(
    payment: PaymentRecord, refunds: Iterable[RefundRecord], fee_rate: Decimal
) -> dict[str, int]:
    """The fee each succeeded refund of `payment` returned, by refund id."""
    fee = payment_fee(payment.amount, fee_rate)
    left = Split(
        payable_amount=payment.amount,
        channel_fee_amount=fee,
        commission_amount=0,
        merchant_net_amount=payment.amount - fee,
    )
    returned: dict[str, int] = {}
    for refund in sorted(refunds, key=lambda r: (r.succeeded_at or 0, r.refund_id)):
        parts = split_refund(left, refund.amount)
        returned[refund.refund_id] = parts.channel_fee_amount
        left = subtract(left, parts)
    return returned


def day_sweeps(
    channel: str,
    day: date,
    fee_rate: Decimal,
    payments: Sequence[PaymentRecord],
    refunds: Sequence[RefundRecord],
) -> list[SweepRecord]:
    """The day's transfers of one channel's records, one per currency that moved."""
    gross: dict[str, int] = defaultdict(int)
    fees: dict[str, int] = defaultdict(int)
    paid_back: dict[str, int] = defaultdict(int)
    for payment in payments:
        if payment.paid_at is not None and utc_day(payment.paid_at) == day:
            gross[payment.currency] += payment.amount
            fees[payment.currency] += payment_fee(payment.amount, fee_rate)
    succeeded = [r for r in refunds if r.succeeded_at is not None]
    by_payment = {p.out_trade_no: p for p in payments}
    for out_trade_no in {r.out_trade_no for r in succeeded}:
        payment = by_payment[out_trade_no]
        theirs = [r for r in succeeded if r.out_trade_no == out_trade_no]
        returned = returned_fees(payment, theirs, fee_rate)
        for refund in theirs:
            assert refund.succeeded_at is not None
            if utc_day(refund.succeeded_at) == day:
                paid_back[refund.currency] += refund.amount
                fees[refund.currency] -= returned[refund.refund_id]
    return [
        SweepRecord(
            transfer_id=f"sweep_{channel}_{day:%Y%m%d}_{currency}",
            channel=channel,
            day=day.isoformat(),
            currency=currency,
            gross=gross[currency],
            fees=fees[currency],
            refunds=paid_back[currency],
            net=gross[currency] - fees[currency] - paid_back[currency],
            bank_reference=f"bank_{secrets.token_hex(12)}",
            credited_at=time.time(),
        )
        for currency in sorted(gross.keys() | paid_back.keys())
    ]
