"""A channel's settlement: what it took on a day, less what it paid back and its fees,
paid into the platform's bank account at the sandbox bank.

Each channel settles a day on its own cycle (Alipay and WeChat Pay T+1, the card gateway
T+2; `channel_sweep_lag_days`) with one transfer per currency. The day is the channel's
business day, the one its bill covers (`sandbox.bill_entries.day_window`: Beijing's for
Alipay and WeChat Pay, UTC's for the card gateway):

    gross    payments taken that day (late ones too: the channel took them)
    fees     its fee on each (round half up), less the fee it returns on refunds
    refunds  refunds it paid back that day
    net      gross - fees - refunds   (negative: it takes the difference from the bank)

A refund returns the fee in proportion to what is left of its payment, rounded half up,
exactly as `domain.split.split_refund` takes a refund's parts, so the last refund of a
payment returns what is left of its fee. The records are the bank's statement of the
transfers and the channel's report of its settlement.

A currency the gateway settles in another (`sandbox.settlement_fx`, the card gateway's
USD paid to us in CNY) gets its own transfer, `sweep_{channel}_{day}_{USD}_{CNY}`, in the
settlement currency: each order's day (its payment less its refunds, in USD) converted at
the settlement rate by the one rounding rule (`domain.fx.conversion.convert`), summed as
`gross`; the fees (kept less returned, in USD) converted the same way as one sum; no
separate refunds (they are inside each order's figure). The transfer says the source
currency, the rate and each order's converted amount, which is what paysaga realises.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from domain.fx.conversion import convert
from domain.money import apply_rate
from domain.split import Split, split_refund, subtract
from sandbox.bill_entries import day_of

if TYPE_CHECKING:
    from sandbox.store import PaymentRecord, RefundRecord

SweepStatus = Literal["credited"]


@dataclass(frozen=True)
class SweepRecord:
    transfer_id: str
    channel: str
    day: str  # ISO date of the takings: the channel's business day, as its bill's
    currency: str
    gross: int
    fees: int
    refunds: int
    net: int
    bank_reference: str
    credited_at: float
    status: SweepStatus = "credited"
    # A converted settlement: the presentment currency, the rate (settlement units per
    # source unit, a decimal string), and each order's converted day (out_trade_no -> amount).
    source_currency: str | None = None
    rate: str | None = None
    orders: dict[str, int] | None = None


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


def _signed_convert(amount: int, source: str, target: str, rate: Decimal) -> int:
    """`convert` of a possibly negative amount: the rule is symmetric about zero."""
    converted = convert(abs(amount), source, target, rate).target_amount
    return converted if amount >= 0 else -converted


def day_sweeps(
    channel: str,
    day: date,
    fee_rate: Decimal,
    payments: Sequence[PaymentRecord],
    refunds: Sequence[RefundRecord],
    conversions: Mapping[str, tuple[str, Decimal]] | None = None,
) -> list[SweepRecord]:
    """The day's transfers of one channel's records, one per currency that moved (and one
    per converted currency, in its settlement currency)."""
    gross: dict[str, int] = defaultdict(int)
    fees: dict[str, int] = defaultdict(int)
    paid_back: dict[str, int] = defaultdict(int)
    per_order: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for payment in payments:
        if payment.paid_at is not None and day_of(channel, payment.paid_at) == day:
            gross[payment.currency] += payment.amount
            fees[payment.currency] += payment_fee(payment.amount, fee_rate)
            per_order[payment.currency][payment.out_trade_no] += payment.amount
    succeeded = [r for r in refunds if r.succeeded_at is not None]
    by_payment = {p.out_trade_no: p for p in payments}
    for out_trade_no in {r.out_trade_no for r in succeeded}:
        payment = by_payment[out_trade_no]
        theirs = [r for r in succeeded if r.out_trade_no == out_trade_no]
        returned = returned_fees(payment, theirs, fee_rate)
        for refund in theirs:
            assert refund.succeeded_at is not None
            if day_of(channel, refund.succeeded_at) == day:
                paid_back[refund.currency] += refund.amount
                fees[refund.currency] -= returned[refund.refund_id]
                per_order[refund.currency][out_trade_no] -= refund.amount
    conversions = conversions or {}
    plain = sorted((gross.keys() | paid_back.keys()) - conversions.keys())
    records = [
        _record(channel, day, currency, gross[currency], fees[currency], paid_back[currency])
        for currency in plain
    ]
    for source in sorted((gross.keys() | paid_back.keys()) & conversions.keys()):
        target, rate = conversions[source]
        orders = {
            order: _signed_convert(amount, source, target, rate)
            for order, amount in sorted(per_order[source].items())
            if amount != 0
        }
        converted_fees = _signed_convert(fees[source], source, target, rate)
        record = _record(channel, day, target, sum(orders.values()), converted_fees, 0)
        records.append(
            replace(
                record,
                transfer_id=f"sweep_{channel}_{day:%Y%m%d}_{source}_{target}",
                source_currency=source,
                rate=str(rate),
                orders=orders,
            )
        )
    return records


def _record(
    channel: str, day: date, currency: str, gross: int, fees: int, refunds: int
) -> SweepRecord:
    return SweepRecord(
        transfer_id=f"sweep_{channel}_{day:%Y%m%d}_{currency}",
        channel=channel,
        day=day.isoformat(),
        currency=currency,
        gross=gross,
        fees=fees,
        refunds=refunds,
        net=gross - fees - refunds,
        bank_reference=f"bank_{secrets.token_hex(12)}",
        credited_at=time.time(),
    )
