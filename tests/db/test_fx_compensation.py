"""A quoted order compensated by its saga, on SQLite and PostgreSQL: the buyer's money
waits in refunds in flight in the buyer's currency (the currency the channel gives it
back in), the merchant's split leaves in its own, and both FX positions close; the
confirmation takes it out of the buyer's-currency clearing. The identity in each
currency (`db.fx_books.fx_order_problems`) holds at every step."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from db.fx_books import fx_order_problems
from db.saga_money import book_refund_asked, book_refund_confirmed
from db.tables import Order, Payment, Refund
from domain.keys import compensation_refund_id
from domain.refunds import RefundStatus
from tests.db.conftest import Shop
from tests.db.fx_orders import quoted_paid_order
from tests.db.test_fx_books import order_sums


def _problems(shop: Shop, order_id: str) -> list[str]:
    with Session(shop.engine) as session:
        order = session.get_one(Order, order_id)
        payment = session.exec(select(Payment).where(Payment.order_id == order_id)).one()
        return fx_order_problems(session, order, payment.amount)


def _ask(shop: Shop, order_id: str, refund_id: str, amount: int, currency: str) -> None:
    now = datetime.now(UTC)
    with Session(shop.engine) as session, session.begin():
        refund = Refund(
            id=refund_id,
            order_id=order_id,
            channel=shop.channel,
            amount=amount,
            currency=currency,
            reason="compensation",
            status=RefundStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
        session.add(refund)
        session.flush()
        book_refund_asked(session, refund)
        book_refund_asked(session, refund)  # a retried ask books nothing more


def _answer(shop: Shop, refund_id: str, status: RefundStatus) -> None:
    with Session(shop.engine) as session, session.begin():
        refund = session.get_one(Refund, refund_id)
        if status == RefundStatus.SUCCEEDED:
            book_refund_confirmed(session, refund)
            book_refund_confirmed(session, refund)
        refund.status = status


@pytest.mark.parametrize("presentment", ["USD", "JPY"])
def test_a_compensated_quoted_order_is_given_back_in_the_buyers_currency(
    shop: Shop, presentment: str
) -> None:
    order_id, quote = quoted_paid_order(shop, presentment)
    paid = quote.presentment_amount
    clearing = f"channel_clearing:{shop.channel}:{presentment}"
    in_flight = f"refunds_in_flight:{shop.channel}:{presentment}"
    first = compensation_refund_id(order_id)
    _ask(shop, order_id, first, paid, presentment)
    sums = {account: amount for account, amount in order_sums(shop, order_id).items() if amount}
    assert sums.get(in_flight) == paid and sums.get(clearing) == paid
    assert f"refunds_in_flight:{shop.channel}:CNY" not in sums  # nothing stuck in CNY
    assert f"merchant_pending:{shop.merchant_id}:CNY" not in sums
    assert "fx_position:platform:CNY" not in sums
    assert f"fx_position:platform:{presentment}" not in sums
    assert f"fx_markup_revenue:platform:{presentment}" not in sums
    assert _problems(shop, order_id) == []

    _answer(shop, first, RefundStatus.FAILED)  # refused: the money stays in flight
    assert order_sums(shop, order_id)[in_flight] == paid
    assert _problems(shop, order_id) == []
    second = compensation_refund_id(order_id, 2)
    _ask(shop, order_id, second, paid, presentment)
    assert order_sums(shop, order_id)[in_flight] == paid  # not moved twice
    _answer(shop, second, RefundStatus.SUCCEEDED)
    sums = {account: amount for account, amount in order_sums(shop, order_id).items() if amount}
    assert in_flight not in sums and clearing not in sums
    assert _problems(shop, order_id) == []
    assert shop.ledger_problems() == []
