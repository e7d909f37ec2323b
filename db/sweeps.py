"""A channel's sweep in the books: what we booked for its day, and the transfer posted.

`booked_day` reads the payment and refund rows (not the ledger), so the fee check
compares the channel's report with our own records of what happened that day (the
channel's business day, `domain.reconciliation.day_window`: Beijing's for Alipay and
WeChat Pay, UTC's for the card gateway, the day its bill covers); the
posting is keyed by the bank's transfer id, so a retried or repeated sweep posts once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from db.fx_books import order_quote, realise_order_fx, refund_charge
from db.ledger import post_entry
from db.tables import ChannelSweep, Order, Payment, Refund
from db.writes import insert_ignore
from domain.fx.conversion import convert
from domain.keys import channel_sweep_entry_id
from domain.ledger import EntryKind, channel_sweep_postings
from domain.money import apply_rate
from domain.reconciliation import day_window
from domain.refunds import RefundStatus
from domain.split import Split, split_refund, subtract
from domain.sweeps import BookedDay

LATE_PAYMENT = "late_payment"
COMPENSATION = "compensation"


def booked_day(session: Session, channel: str, day: date) -> BookedDay:
    """Per currency: payments taken that day at `channel`, refunds it confirmed that day,
    and the channel fee we booked on them (the fees refunds gave back deducted)."""
    start, end = day_window(channel, day)
    gross: dict[str, int] = defaultdict(int)
    refunds: dict[str, int] = defaultdict(int)
    fees: dict[str, int] = defaultdict(int)
    paid = session.exec(
        select(Payment, Order)
        .join(Order, col(Order.id) == Payment.order_id)
        .where(Payment.channel == channel, Payment.status == "paid")
        .where(col(Payment.paid_at) >= start, col(Payment.paid_at) < end)
    ).all()
    for payment, order in paid:
        gross[payment.currency] += payment.amount
        fees[payment.currency] += _payment_fee(payment, order)
    late = session.exec(
        select(Refund)
        .where(Refund.channel == channel, Refund.reason == LATE_PAYMENT)
        .where(col(Refund.created_at) >= start, col(Refund.created_at) < end)
    ).all()
    for refund in late:  # a late payment was taken when we heard of it
        gross[refund.currency] += refund.amount
    confirmed = session.exec(
        select(Refund, Order)
        .join(Order, col(Order.id) == Refund.order_id)
        .where(Refund.channel == channel, Refund.status == RefundStatus.SUCCEEDED)
        .where(col(Refund.updated_at) >= start, col(Refund.updated_at) < end)
    ).all()
    for refund, order in confirmed:
        amount, currency = refund_charge(session, refund)  # what the channel gave back
        refunds[currency] += amount
        fees[currency] -= _returned_fee(session, refund, order, currency)
    return BookedDay(gross=dict(gross), refunds=dict(refunds), fees=dict(fees))


def _payment_fee(payment: Payment, order: Order) -> int:
    """Our channel fee on a payment, in the currency the channel took it in.

    A quoted order's fee is booked in the price's currency on the price; the channel
    charges its fee on the buyer's money, in the buyer's currency. Like for like, ours is
    then our fee rate on what the channel took (the same rule, `apply_rate`, on the
    buyer's amount), which a converted transfer's check converts at the transfer's own
    rate (`converted_fees`), as the channel converts its fees."""
    if payment.currency == order.currency:
        return order.channel_fee_amount or 0
    return apply_rate(payment.amount, Decimal(order.channel_fee_rate))


def _returned_fee(session: Session, refund: Refund, order: Order, currency: str) -> int:
    """The fee a confirmed refund gave back, as we booked it (in `currency`, what the
    channel gave back in)."""
    if refund.reason == LATE_PAYMENT:
        return 0  # we booked no fee on a late payment
    if currency != order.currency:  # a quoted order's: its share of the buyer-side fee
        return _quoted_returned_fees(session, order).get(refund.id, 0)
    if refund.reason == COMPENSATION:
        return order.channel_fee_amount or 0  # the whole payment, and its whole fee
    return refund.channel_fee_amount


def _quoted_returned_fees(session: Session, order: Order) -> dict[str, int]:
    """The buyer-side fee each confirmed refund of a quoted order returned, by refund id:
    the fee on the payment, taken back in proportion to what is left of it, refund after
    refund in the order they were confirmed (`domain.split.split_refund`, as a channel
    returns its fee)."""
    payment = session.exec(
        select(Payment).where(Payment.order_id == order.id, Payment.status == "paid")
    ).first()
    if payment is None:
        return {}
    fee = _payment_fee(payment, order)
    left = Split(
        payable_amount=payment.amount,
        channel_fee_amount=fee,
        commission_amount=0,
        merchant_net_amount=payment.amount - fee,
    )
    confirmed = session.exec(
        select(Refund)
        .where(Refund.order_id == order.id, Refund.status == RefundStatus.SUCCEEDED)
        .where(Refund.reason != LATE_PAYMENT)
        .order_by(col(Refund.updated_at), col(Refund.id))
    ).all()
    returned: dict[str, int] = {}
    for refund in confirmed:
        amount, _ = refund_charge(session, refund)
        parts = split_refund(left, min(amount, left.payable_amount))
        returned[refund.id] = parts.channel_fee_amount
        left = subtract(left, parts)
    return returned


def converted_fees(fees: int, source: str, target: str, rate: Decimal) -> int:
    """Fees of `source` as a converted transfer states them in `target`: one sum converted
    at the transfer's rate by the one rounding rule (`domain.fx.conversion.convert`,
    symmetric about zero: fees returned can outweigh fees kept)."""
    converted = convert(abs(fees), source, target, rate).target_amount
    return converted if fees >= 0 else -converted


def post_channel_sweep(
    session: Session,
    transfer_id: str,
    channel: str,
    currency: str,
    *,
    day: date,
    gross: int,
    net: int,
    refunds: int,
) -> bool:
    """Post a transfer once: bank +net, channel fee +(what the channel kept), clearing
    -(gross - refunds). What it kept is read from the money, gross - refunds - net, not
    from the fee it states. The transfer is listed (`channel_sweeps`) under the channel's
    `day` it settles, for reconciliation. True when this call posted it."""
    kept = gross - refunds - net
    postings = channel_sweep_postings(channel, currency, gross=gross, fees=kept, refunds=refunds)
    entry = channel_sweep_entry_id(transfer_id)
    posted = bool(postings) and post_entry(
        session,
        entry_id=entry,
        kind=EntryKind.CHANNEL_SWEEP,
        currency=currency,
        postings=postings,
    )
    insert_ignore(
        session,
        ChannelSweep,
        {
            "transfer_id": transfer_id,
            "channel": channel,
            "day": day.isoformat(),
            "currency": currency,
            "gross": gross,
            "fees": kept,
            "refunds": refunds,
            "net": net,
            "entry_id": entry if postings else None,  # nothing moved: nothing posted
            "recorded_at": datetime.now(UTC),
        },
    )
    return posted


def realise_converted(session: Session, transfer_id: str, orders: dict[str, int]) -> list[str]:
    """The channel converted each order's day at its rate: realise each quoted order's FX
    (positions flat, the difference from our quote to FX gain/loss), keyed by transfer and
    order so a repeated sweep realises once. Returns the orders it could not realise (not
    quoted, or nothing open): their converted money stays for review."""
    unrealised = []
    for order_id, settled in sorted(orders.items()):
        order = session.get(Order, order_id)
        if order is None or order_quote(session, order) is None:
            unrealised.append(order_id)
            continue
        if realise_order_fx(session, order_id, f"{transfer_id}:{order_id}", settled) is None:
            unrealised.append(order_id)
    return unrealised
