"""Synchronous database reads and writes behind the routes (run in a worker thread)."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from sqlalchemy import BindParameter, bindparam
from sqlmodel import Session, col, func, select

from api.errors import NotFound
from api.pages.checkout_links import checkout_url
from api.schemas import (
    AmountsOut,
    ChannelConversionOut,
    LineOut,
    OrderOut,
    PaymentAttempts,
    PaymentOut,
    QuoteOut,
    SplitOut,
)
from db.channel_conversions import order_conversions
from db.fx_books import quote_terms
from db.payments import current_payment, payment_attempts
from db.tables import Order, OrderLine, OrderQuote, OrderReturnUrl, Payment, Refund
from domain.keys import stored_payment_reference
from settings import Settings

# The reads of every order read, built once: see db.payments.
_ORDER_ID: BindParameter[str] = bindparam("order_id")
_LINES = (
    select(OrderLine).where(col(OrderLine.order_id) == _ORDER_ID).order_by(col(OrderLine.line_no))
)
_REFUND_TOTALS = (
    select(Refund.status, func.sum(Refund.amount))
    .where(col(Refund.order_id) == _ORDER_ID)
    .group_by(col(Refund.status))
)
_RETURN_URL = select(OrderReturnUrl.return_url).where(col(OrderReturnUrl.order_id) == _ORDER_ID)
_QUOTE = select(OrderQuote).where(col(OrderQuote.order_id) == _ORDER_ID)


def new_id(prefix: str) -> str:
    """A time-ordered id: newer ids sort after older ones, which keeps listing pages stable."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"


def now() -> datetime:
    return datetime.now(UTC)


def get_order(session: Session, order_id: str) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("order_not_found", f"no order {order_id}", "id")
    return order


def order_out(session: Session, order: Order, settings: Settings) -> OrderOut:
    """The order as its readers see it, with the hosted checkout's link (the buyer's way
    to pay or switch method; its token is the capability to open the page)."""
    of_order = {"order_id": order.id}
    lines = session.exec(_LINES, params=of_order).all()
    payment = current_payment(session, order.id)
    refund_totals = dict(session.exec(_REFUND_TOTALS, params=of_order).all())
    split = None
    if order.merchant_net_amount is not None:
        split = SplitOut(
            channel_fee=order.channel_fee_amount or 0,
            commission=order.commission_amount or 0,
            merchant_net=order.merchant_net_amount,
        )
    return OrderOut(
        id=order.id,
        merchant_id=order.merchant_id,
        channel=order.channel or None,
        currency=order.currency,
        status=order.status,
        close_reason=order.close_reason,
        needs_review=order.needs_review,
        review_reason=order.review_reason,
        description=order.description,
        buyer_ref=order.buyer_ref,
        coupon_code=order.coupon_code,
        amounts=AmountsOut(
            total=order.total_amount, discount=order.discount_amount, payable=order.payable_amount
        ),
        lines=[LineOut.model_validate(line, from_attributes=True) for line in lines],
        payment=_payment_out(payment) if payment is not None else None,
        split=split,
        refunded_amount=int(refund_totals.get("succeeded", 0)),
        refunding_amount=int(refund_totals.get("pending", 0)),
        funds_released_at=order.funds_released_at,
        created_at=order.created_at,
        return_url=_return_url(session, order.id),
        checkout_url=checkout_url(settings, order.id),
        quote=_quote_out(session, order.id),
        channel_conversions=[
            ChannelConversionOut.model_validate(row, from_attributes=True)
            for row in order_conversions(session, order.id)
        ],
    )


def _quote_out(session: Session, order_id: str) -> QuoteOut | None:
    row = session.exec(_QUOTE, params={"order_id": order_id}).first()
    if row is None:
        return None
    terms = quote_terms(row)
    return QuoteOut(
        id=terms.quote_id,
        price_amount=terms.price_amount,
        price_currency=terms.price_currency,
        presentment_amount=terms.presentment_amount,
        presentment_currency=terms.presentment_currency,
        mid_rate=str(terms.mid_rate),
        customer_rate=str(terms.customer_rate),
        markup_bps=terms.markup_bps,
        markup_amount=terms.markup_amount,
        rate_source=terms.rate_source,
        rate_as_of=terms.rate_as_of,
        expires_at=terms.expires_at,
    )


def attempts_out(session: Session, order: Order) -> PaymentAttempts:
    return PaymentAttempts(
        data=[_payment_out(payment) for payment in payment_attempts(session, order.id)]
    )


def _return_url(session: Session, order_id: str) -> str | None:
    return session.exec(_RETURN_URL, params={"order_id": order_id}).first()


def _payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut(
        reference=stored_payment_reference(
            payment.order_id, payment.attempt, payment.channel_payment_id
        ),
        attempt=payment.attempt,
        channel=payment.channel,
        status=payment.status,
        channel_payment_id=payment.channel_payment_id,
        checkout_url=payment.checkout_url,
        qr_payload=payment.qr_payload,
        channel_txn_id=payment.channel_txn_id,
        amount=payment.amount,
        currency=payment.currency,
        paid_at=payment.paid_at,
        updated_at=payment.updated_at,
    )
