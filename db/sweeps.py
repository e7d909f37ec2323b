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

from sqlmodel import Session, col, select

from db.fx_books import order_quote, realise_order_fx
from db.ledger import post_entry
from db.tables import ChannelSweep, Order, Payment, Refund
from db.writes import insert_ignore
from domain.keys import channel_sweep_entry_id
from domain.ledger import EntryKind, channel_sweep_postings
from domain.reconciliation import day_window
from domain.refunds import RefundStatus
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
        fees[payment.currency] += order.channel_fee_amount or 0
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
        refunds[refund.currency] += refund.amount
        fees[refund.currency] -= _returned_fee(refund, order)
    return BookedDay(gross=dict(gross), refunds=dict(refunds), fees=dict(fees))


def _returned_fee(refund: Refund, order: Order) -> int:
    """The fee a confirmed refund gave back, as we booked it."""
    if refund.reason == COMPENSATION:
        return order.channel_fee_amount or 0  # the whole payment, and its whole fee
    if refund.reason == LATE_PAYMENT:
        return 0  # we booked no fee on a late payment
    return refund.channel_fee_amount


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
