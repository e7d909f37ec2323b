"""An order's money in the ledger: captured, released to the merchant, refunded.

Each function runs inside the caller's transaction, locks the order row first
(so an order's refunds and its release serialise), and is idempotent by the
business key of its entry: calling it again after a crash or a retry finds the
earlier work and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam
from sqlmodel import Session, select

from db.fx_books import (
    capture_quoted,
    complete_postings,
    order_quote,
    presentment_refund,
    reserve_quoted_refund,
    return_quoted_refund,
)
from db.ledger import post_entry
from db.payments import current_payment
from db.tables import Order, OrderLine, Refund, RefundLine
from db.times import as_utc
from domain.keys import (
    funds_release_entry_id,
    refund_completion_entry_id,
    refund_reservation_entry_id,
    refund_return_entry_id,
    settlement_entry_id,
)
from domain.ledger import (
    EntryKind,
    PostingLine,
    refund_reserve_postings,
    release_postings,
    reversal_postings,
    settlement_postings,
)
from domain.order_status import OrderStatus
from domain.refunds import (
    REFUNDABLE_STATUSES,
    RefundAsk,
    RefundRejected,
    RefundStatus,
    check_amount,
    check_window,
    line_refund_amount,
)
from domain.split import Split, split_payment, split_refund, subtract


def now() -> datetime:
    return datetime.now(UTC)


# Built once: see db.payments.
_LOCKED_ORDER = select(Order).where(Order.id == bindparam("order_id")).with_for_update()


def locked_order(session: Session, order_id: str) -> Order:
    return session.exec(_LOCKED_ORDER, params={"order_id": order_id}).one()


def order_split(order: Order) -> Split:
    return split_payment(
        order.payable_amount, Decimal(order.channel_fee_rate), Decimal(order.commission_rate)
    )


def refunded_parts(order: Order) -> Split:
    return Split(
        payable_amount=order.refunded_amount,
        channel_fee_amount=order.refunded_fee_amount,
        commission_amount=order.refunded_commission_amount,
        merchant_net_amount=order.refunded_net_amount,
    )


def capture_payment(session: Session, order: Order) -> Split:
    """Post the settlement entry of a paid order (once) and record its split."""
    split = order_split(order)
    quote = order_quote(session, order)
    if quote is not None:  # paid in another currency: through the FX positions
        capture_quoted(session, order, quote, split, settlement_entry_id(order.id))
    else:
        postings = settlement_postings(order.channel, order.merchant_id, order.currency, split)
        entry_id = settlement_entry_id(order.id)
        _post_for_order(session, order, entry_id, EntryKind.SETTLEMENT, postings)
    order.channel_fee_amount = split.channel_fee_amount
    order.commission_amount = split.commission_amount
    order.merchant_net_amount = split.merchant_net_amount
    return split


def release_funds(session: Session, order_id: str) -> int:
    """The order completed: what is left of the merchant's share becomes available.

    Returns the amount released. Refunds already asked took their part from pending
    first; refunds asked afterwards take it from available.
    """
    return release_order_funds(session, locked_order(session, order_id))


def release_order_funds(session: Session, order: Order) -> int:
    """`release_funds` for an order the caller's transaction has locked already."""
    if order.funds_released_at is None:
        remaining = (order.merchant_net_amount or 0) - order.refunded_net_amount
        postings = release_postings(order.merchant_id, order.currency, remaining)
        _post_for_order(
            session, order, funds_release_entry_id(order.id), EntryKind.FUNDS_RELEASED, postings
        )
        order.funds_released_at = now()
    order.status = OrderStatus.COMPLETED
    order.updated_at = now()
    return (order.merchant_net_amount or 0) - order.refunded_net_amount


def reserve_refund(session: Session, ask: RefundAsk, window: timedelta) -> Refund:
    """Check a refund against the order and move its parts into refunds in flight.

    Returns the refund row (the existing one for a repeated id). Raises RefundRejected
    when a rule refuses it; the caller's transaction then keeps nothing.
    """
    order = locked_order(session, ask.order_id)
    # Looked up under the order's lock: a repeat that waited on the first ask finds it.
    existing = session.get(Refund, ask.refund_id)
    if existing is not None:
        return existing
    payment = current_payment(session, order.id)  # the paid attempt, if any
    if order.status not in REFUNDABLE_STATUSES or payment is None or payment.paid_at is None:
        raise RefundRejected(
            "order_not_refundable", f"the order is {order.status}; it cannot be refunded now", "id"
        )
    check_window(ask.requested_by, as_utc(payment.paid_at), now(), window)
    amount, lines = _refund_amount(session, order, ask)
    remaining = subtract(order_split(order), refunded_parts(order))
    check_amount(amount, remaining.payable_amount)
    parts = split_refund(remaining, amount)
    released = order.funds_released_at is not None
    quote = order_quote(session, order)
    entry_id = refund_reservation_entry_id(ask.refund_id)
    shown = None
    if quote is not None:  # the buyer gets their own currency back, at the quoted rate
        shown = reserve_quoted_refund(session, order, quote, ask.refund_id, parts, entry_id)
        _add_parts(order, parts, 1)
    else:
        _post_refund_parts(session, order, entry_id, parts, 1)
    refund = Refund(
        id=ask.refund_id,
        order_id=order.id,
        channel=order.channel,
        channel_txn_id=payment.channel_txn_id,
        amount=amount,
        currency=order.currency,
        reason=ask.reason or "requested",
        status=RefundStatus.PENDING,
        requested_by=ask.requested_by.value,
        channel_fee_amount=parts.channel_fee_amount,
        commission_amount=parts.commission_amount,
        merchant_net_amount=parts.merchant_net_amount,
        from_available=released,
        created_at=now(),
        updated_at=now(),
    )
    session.add(refund)
    session.flush()
    session.add_all(lines)
    if shown is not None:
        session.add(shown)
    return refund


def complete_refund(session: Session, refund_id: str) -> Refund:
    """The channel paid the buyer back: the refund's money leaves clearing (once)."""
    refund = _locked_refund(session, refund_id)
    if refund.status == RefundStatus.PENDING:
        # Locked before the accounts, as every order's entry is: the entry names the
        # order (a foreign key, whose key-share lock would otherwise wait on an order
        # lock held by a transaction that waits on these accounts).
        order = locked_order(session, refund.order_id)
        currency, postings = complete_postings(session, refund)  # the buyer's currency
        post_entry(
            session,
            entry_id=refund_completion_entry_id(refund.id),
            kind=EntryKind.REFUND_COMPLETED,
            currency=currency,
            postings=postings,
            order_id=order.id,
            merchant_id=order.merchant_id,
        )
        refund.status = RefundStatus.SUCCEEDED
        refund.updated_at = now()
    return refund


def fail_refund(session: Session, refund_id: str, reason: str) -> Refund:
    """The channel refused: every part goes back, and the order may be refunded again."""
    refund = _locked_refund(session, refund_id)
    if refund.status != RefundStatus.PENDING:
        return refund
    order = locked_order(session, refund.order_id)
    parts = _refund_parts(refund)
    # Back to pending if the order is still open, to available if it completed meanwhile;
    # its amount and units may be refunded again.
    quote = order_quote(session, order)
    if quote is not None and presentment_refund(session, refund) is not None:
        return_quoted_refund(
            session, order, quote, refund, parts, refund_return_entry_id(refund.id)
        )
        _add_parts(order, parts, -1)
    else:
        _post_refund_parts(session, order, refund_return_entry_id(refund.id), parts, -1)
    refund.status = RefundStatus.FAILED
    refund.failure_reason = reason
    refund.updated_at = now()
    return refund


def _refund_amount(session: Session, order: Order, ask: RefundAsk) -> tuple[int, list[RefundLine]]:
    if (ask.amount is None) == (not ask.lines):
        raise RefundRejected("amount_or_lines", "give either an amount or lines", "amount")
    if ask.amount is not None:
        return ask.amount, []
    order_lines = {
        line.line_no: line
        for line in session.exec(select(OrderLine).where(OrderLine.order_id == order.id))
    }
    rows: list[RefundLine] = []
    for asked in ask.lines:
        line = order_lines.get(asked.line_no)
        if line is None or any(row.line_no == asked.line_no for row in rows):
            raise RefundRejected("line_invalid", f"no line {asked.line_no} to refund", "lines")
        done = _refunded_units(session, order.id, asked.line_no)
        amount = line_refund_amount(line.payable_amount, line.quantity, done, asked.quantity)
        rows.append(
            RefundLine(
                refund_id=ask.refund_id,
                line_no=asked.line_no,
                quantity=asked.quantity,
                amount=amount,
            )
        )
    return sum(row.amount for row in rows), rows


def _refunded_units(session: Session, order_id: str, line_no: int) -> int:
    rows = session.exec(
        select(RefundLine)
        .join(Refund, Refund.id == RefundLine.refund_id)  # type: ignore[arg-type]
        .where(
            Refund.order_id == order_id,
            RefundLine.line_no == line_no,
            Refund.status != RefundStatus.FAILED,
        )
    )
    return sum(row.quantity for row in rows)


def _locked_refund(session: Session, refund_id: str) -> Refund:
    return session.exec(select(Refund).where(Refund.id == refund_id).with_for_update()).one()


def _refund_parts(refund: Refund) -> Split:
    return Split(
        payable_amount=refund.amount,
        channel_fee_amount=refund.channel_fee_amount,
        commission_amount=refund.commission_amount,
        merchant_net_amount=refund.merchant_net_amount,
    )


def _post_refund_parts(
    session: Session, order: Order, entry_id: str, parts: Split, sign: int
) -> None:
    """Move a refund's parts into refunds in flight (+1) or back out to their holders (-1).

    The merchant's part moves from (or to) pending while the order is open, and
    available once it has completed.
    """
    released = order.funds_released_at is not None
    postings = refund_reserve_postings(
        order.channel, order.merchant_id, order.currency, parts, released=released
    )
    if sign > 0:
        _post_for_order(session, order, entry_id, EntryKind.REFUND_RESERVED, postings)
    else:
        kind = EntryKind.REFUND_FAILED
        _post_for_order(session, order, entry_id, kind, reversal_postings(postings))
    _add_parts(order, parts, sign)


def _post_for_order(
    session: Session, order: Order, entry_id: str, kind: EntryKind, postings: list[PostingLine]
) -> None:
    """Post an entry of the order (tagged with it and its merchant); nothing moves nothing."""
    if postings:  # e.g. a zero-payable order, or a release with nothing left
        post_entry(
            session,
            entry_id=entry_id,
            kind=kind,
            currency=order.currency,
            postings=postings,
            order_id=order.id,
            merchant_id=order.merchant_id,
        )


def _add_parts(order: Order, parts: Split, sign: int) -> None:
    order.refunded_amount += sign * parts.payable_amount
    order.refunded_fee_amount += sign * parts.channel_fee_amount
    order.refunded_commission_amount += sign * parts.commission_amount
    order.refunded_net_amount += sign * parts.merchant_net_amount
    order.updated_at = now()
