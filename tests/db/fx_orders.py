"""Quoted (cross-currency) orders on a real database, as the saga leaves them once paid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlmodel import Session

from db.fx_books import store_quote
from db.order_money import capture_payment
from db.tables import Order, Payment
from domain.fx.quotes import Quote, make_quote
from domain.fx.sandbox_rates import SandboxRates
from domain.fx.terms import QuoteTerms
from domain.order_status import OrderStatus
from tests.db.conftest import COMMISSION_RATE, Shop, new_id

RATES = SandboxRates(seed="tests")
CARD_FEE = Decimal("0.029")


def quoted_paid_order(
    shop: Shop, presentment: str, price: int = 10_000, markup_bps: int = 250
) -> tuple[str, Quote]:
    """A `shop.currency` order of `price` paid in `presentment` at a sandbox quote."""
    order_id = new_id("ord")
    now = datetime.now(UTC)
    mid = RATES.rate(shop.currency, presentment, now)
    quote = make_quote(new_id("quo"), price, mid, markup_bps, now, timedelta(minutes=20))
    with Session(shop.engine) as session, session.begin():
        order = Order(
            id=order_id,
            merchant_id=shop.merchant_id,
            channel=shop.channel,
            currency=shop.currency,
            total_amount=price,
            discount_amount=0,
            payable_amount=price,
            channel_fee_rate=str(CARD_FEE),
            commission_rate=str(COMMISSION_RATE),
            payment_timeout_seconds=900,
            status=OrderStatus.PAID,
            created_at=now,
            updated_at=now,
        )
        session.add(order)
        session.flush()
        store_quote(session, order_id, QuoteTerms.of(quote))
        session.add(
            Payment(
                order_id=order_id,
                channel=shop.channel,
                status="paid",
                channel_txn_id=new_id("txn"),
                amount=quote.presentment_amount,
                currency=presentment,
                paid_at=now,
                updated_at=now,
            )
        )
        session.flush()
        capture_payment(session, order)
        order.status = OrderStatus.AWAITING_RECEIPT
    return order_id, quote
