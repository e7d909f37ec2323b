"""A page of orders is read in the queries of one order, and each order in it shows its
own parts: its current payment, refunds, quote, return URL, lines and the channel's
conversions, never another order's (api.services.order_views)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, event
from sqlmodel import Session

from activities.order_records import OrderRecords
from api.services.order_views import order_out, orders_out
from db.engine import session_factory
from db.tables import ChannelConversion, Order, OrderQuote, OrderReturnUrl, Payment, Refund
from domain.pricing import OrderLine, price_order
from domain.saga import OrderInput
from settings import Settings
from tests.db.conftest import Shop, new_id

SETTINGS = Settings.model_construct(jwt_secret=SecretStr("k"))


def _placed(shop: Shop, quantities: list[int]) -> str:
    lines = [
        OrderLine(sku=f"sku-{n}", name=f"Item {n}", quantity=quantity, unit_amount=1000)
        for n, quantity in enumerate(quantities)
    ]
    order = OrderInput(
        order_id=new_id("ord"),
        merchant_id=shop.merchant_id,
        channel=shop.channel,
        priced=price_order(lines, shop.currency, None, datetime.now(UTC)),
        channel_fee_rate=Decimal("0.006"),
        commission_rate=Decimal("0.05"),
        payment_timeout_seconds=900,
        notify_url="http://127.0.0.1/notify",
    )
    OrderRecords(session_factory(shop.engine), lambda _event: None).record_order(order)
    return order.order_id


def _attempt(shop: Shop, order_id: str, attempt: int, status: str) -> Payment:
    return Payment(
        order_id=order_id,
        channel=shop.channel,
        attempt=attempt,
        channel_payment_id=f"cp-{order_id}-{attempt}",
        status=status,
        amount=1000,
        currency=shop.currency,
        updated_at=datetime.now(UTC),
    )


def _refund(shop: Shop, order_id: str, amount: int, status: str) -> Refund:
    at = datetime.now(UTC)
    return Refund(
        id=new_id("rf"),
        order_id=order_id,
        channel=shop.channel,
        amount=amount,
        currency=shop.currency,
        reason="test",
        status=status,
        created_at=at,
        updated_at=at,
    )


def _quote(order_id: str) -> OrderQuote:
    at = datetime.now(UTC)
    return OrderQuote(
        id=new_id("qt"),
        order_id=order_id,
        price_currency="CNY",
        price_amount=2000,
        presentment_currency="USD",
        presentment_amount=290,
        mid_rate="0.14",
        customer_rate="0.1442",
        markup_bps=300,
        markup_amount=8,
        mid_residual="0",
        rate_source="test",
        rate_as_of=at,
        created_at=at,
        expires_at=at + timedelta(minutes=15),
    )


def _conversion(shop: Shop, order_id: str) -> ChannelConversion:
    return ChannelConversion(
        id=f"payment:{order_id}:1",
        order_id=order_id,
        kind="payment",
        channel=shop.channel,
        price_currency="HKD",
        price_amount=1000,
        payer_currency="CNY",
        payer_amount=920,
        channel_rate="0.92",
        created_at=datetime.now(UTC),
    )


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements the engine runs inside the block."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_a_page_shows_each_order_its_own_parts_in_three_queries(shop: Shop) -> None:
    modified, quoted, bare = _placed(shop, [1]), _placed(shop, [2]), _placed(shop, [1, 3])
    refunds = [
        _refund(shop, modified, 300, "succeeded"),
        _refund(shop, modified, 200, "succeeded"),
        _refund(shop, modified, 100, "pending"),
        _refund(shop, modified, 50, "failed"),
    ]
    refund_ids = [refund.id for refund in refunds]
    with Session(shop.engine) as session, session.begin():
        session.add_all(
            [
                _attempt(shop, modified, 1, "closed"),
                _attempt(shop, modified, 2, "pending"),
                *refunds,
                OrderReturnUrl(order_id=modified, return_url="https://shop.example/back"),
                _attempt(shop, quoted, 1, "pending"),
                _quote(quoted),
                _conversion(shop, quoted),
            ]
        )

    with Session(shop.engine) as session:
        orders = [session.get_one(Order, key) for key in (modified, quoted, bare)]
        with _statements(shop.engine) as statements:
            page = orders_out(session, orders, SETTINGS)
        alone = [order_out(session, order, SETTINGS) for order in orders]
    with Session(shop.engine) as session, session.begin():  # refunds the ledger never saw
        for refund_id in refund_ids:
            session.delete(session.get_one(Refund, refund_id))

    assert len(statements) == 3  # lines, what each has at most one of, conversions
    assert page == alone
    first, second, third = page
    assert [first.id, second.id, third.id] == [modified, quoted, bare]
    assert first.payment is not None and first.payment.attempt == 2
    assert (first.refunded_amount, first.refunding_amount) == (500, 100)
    assert first.return_url == "https://shop.example/back"
    assert first.quote is None and first.channel_conversions == []
    assert second.payment is not None and second.payment.status == "pending"
    assert second.quote is not None and second.quote.presentment_amount == 290
    assert [c.payer_amount for c in second.channel_conversions] == [920]
    assert (second.refunded_amount, second.return_url) == (0, None)
    assert third.payment is None and third.quote is None
    assert [(line.sku, line.quantity) for line in third.lines] == [("sku-0", 1), ("sku-1", 3)]
    assert [line.quantity for line in second.lines] == [2]
