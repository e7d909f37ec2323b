"""A modified order keeps every payment attempt: the saga's own activities, a real database.

The buyer is shown a checkout for 2 x 1999; the order is changed to 3 x 1999 before they
pay, and they pay the new checkout. Both attempts stay, the first closed with its old
checkout and amount; the current one is what the order shows and what was paid.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import SecretStr
from sqlmodel import Session
from temporalio.exceptions import ApplicationError

from activities.order_records import STALE_TRY, OrderRecords
from api.services.order_views import order_out
from api.services.records import attempts_out
from db.engine import session_factory
from db.payments import current_payment, payment_attempts
from db.tables import Order, Payment
from domain.order_status import OrderStatus
from domain.pricing import OrderLine, PricedOrder, price_order
from domain.saga import MethodChosen, OrderInput, OrderModification, PaymentRecord, StatusChange
from metrics.business import STALE_WRITE_STEPS, BusinessMetrics
from settings import Settings
from tests.db.conftest import Shop, new_id

FIRST = [OrderLine(sku="tea-001", name="Oolong tea", quantity=2, unit_amount=1999)]
CHANGED = [OrderLine(sku="tea-001", name="Oolong tea", quantity=3, unit_amount=1999)]


def _priced(shop: Shop, lines: list[OrderLine]) -> PricedOrder:
    return price_order(lines, shop.currency, None, datetime.now(UTC))


def _placed(shop: Shop, records: OrderRecords) -> OrderInput:
    """An order recorded by the saga, with the checkout `create_payment` recorded for it."""
    order = OrderInput(
        order_id=new_id("ord"),
        merchant_id=shop.merchant_id,
        channel=shop.channel,
        priced=_priced(shop, FIRST),
        channel_fee_rate=Decimal("0.006"),
        commission_rate=Decimal("0.05"),
        payment_timeout_seconds=900,
        notify_url="http://127.0.0.1/notify",
    )
    records.record_order(order)
    with Session(shop.engine) as session, session.begin():
        session.add(
            Payment(
                order_id=order.order_id,
                channel=shop.channel,
                channel_payment_id="cp-1",
                checkout_url="https://pay.example/1",
                status="pending",
                amount=order.priced.payable_amount,
                currency=shop.currency,
                updated_at=datetime.now(UTC),
            )
        )
    return order


def test_a_modified_order_keeps_both_attempts_and_pays_the_current_one(shop: Shop) -> None:
    records = OrderRecords(session_factory(shop.engine), lambda _event: None)
    order = _placed(shop, records)
    change = OrderModification(
        order_id=order.order_id, priced=_priced(shop, CHANGED), payment_attempt=2
    )

    records.record_modification(change)
    records.record_modification(change)  # a retried activity changes nothing more

    with Session(shop.engine) as session:
        attempts = [
            (p.attempt, p.status, p.amount, p.checkout_url)
            for p in payment_attempts(session, order.order_id)
        ]
        current = current_payment(session, order.order_id)
    assert attempts == [(1, "closed", 3998, "https://pay.example/1"), (2, "pending", 5997, None)]
    assert current is not None and current.attempt == 2

    txn_id = new_id("txn")
    records.record_payment(
        PaymentRecord(
            order_id=order.order_id, channel_txn_id=txn_id, amount=5997, currency=shop.currency
        )
    )

    with Session(shop.engine) as session:
        row = session.get_one(Order, order.order_id)
        history = attempts_out(session, row).data
        shown = order_out(session, row, Settings.model_construct(jwt_secret=SecretStr("k"))).payment
    assert [(p.reference, p.status, p.amount) for p in history] == [
        (order.order_id, "closed", 3998),
        (f"{order.order_id}__2", "paid", 5997),
    ]
    assert history[0].paid_at is None and history[1].paid_at is not None
    assert shown == history[-1]  # the order shows its current attempt


def test_the_payment_waits_writes_from_a_lost_task_change_nothing_once_the_order_is_paid(
    shop: Shop,
) -> None:
    """Another worker's replay of the saga took the payment while a try of the payment
    wait's task was lost mid-step; that try's write, landing last, is refused (retried until
    its worker drops the stale task) and leaves the paid order as it was."""
    metrics = BusinessMetrics()
    records = OrderRecords(session_factory(shop.engine), lambda _event: None, metrics)
    order = _placed(shop, records)
    paid = PaymentRecord(
        order_id=order.order_id, channel_txn_id=new_id("txn"), amount=3998, currency=shop.currency
    )
    records.record_payment(paid)
    before = _as_recorded(shop, order.order_id)

    stale_writes: list[Callable[[], None]] = [
        lambda: records.set_order_status(
            StatusChange(order_id=order.order_id, status=OrderStatus.CLOSED, reason="timeout")
        ),
        lambda: records.set_order_status(
            StatusChange(order_id=order.order_id, status=OrderStatus.CANCELLED, reason="buyer")
        ),
        # The hosted checkout's first write (the order awaits the buyer's choice), from a
        # try paused while the buyer chose, paid and the order completed.
        lambda: records.set_order_status(
            StatusChange(order_id=order.order_id, status=OrderStatus.AWAITING_PAYMENT)
        ),
        lambda: records.record_modification(
            OrderModification(
                order_id=order.order_id, priced=_priced(shop, CHANGED), payment_attempt=2
            )
        ),
        lambda: records.record_method_choice(
            MethodChosen(
                order_id=order.order_id,
                channel="wechatpay",
                channel_fee_rate=Decimal("0.006"),
                payment_attempt=2,
            )
        ),
    ]
    for write in stale_writes:
        with pytest.raises(ApplicationError) as refused:
            write()
        assert refused.value.type == STALE_TRY and not refused.value.non_retryable
    assert _as_recorded(shop, order.order_id) == before
    counted = {
        step: metrics.registry.get_sample_value(
            "paysaga_stale_writes_refused_total", {"step": step}
        )
        for step in STALE_WRITE_STEPS
    }
    assert counted == {"set_order_status": 3, "record_modification": 1, "record_method_choice": 1}


def _as_recorded(shop: Shop, order_id: str) -> tuple[object, ...]:
    with Session(shop.engine) as session:
        row = session.get_one(Order, order_id)
        attempts = [(p.attempt, p.status, p.amount) for p in payment_attempts(session, order_id)]
        return (row.status, row.close_reason, row.payable_amount, row.channel, attempts)


@pytest.mark.parametrize(
    ("ended", "stale"),
    [(OrderStatus.CANCELLED, OrderStatus.CLOSED), (OrderStatus.CLOSED, OrderStatus.CANCELLED)],
)
def test_an_unpaid_ending_from_a_lost_task_never_replaces_another(
    shop: Shop, ended: OrderStatus, stale: OrderStatus
) -> None:
    """make chaos (two workers, one paused): the paused worker's poll found the payment
    closed at the channel, because another worker, replaying its task, had taken the
    buyer's cancel and closed it there; the stale try then wrote `closed` over `cancelled`.
    The ending written first stands; the same ending again (a retry) is taken."""
    records = OrderRecords(session_factory(shop.engine), lambda _event: None)
    order = _placed(shop, records)
    records.set_order_status(StatusChange(order_id=order.order_id, status=ended, reason="first"))
    records.set_order_status(StatusChange(order_id=order.order_id, status=ended, reason="first"))
    before = _as_recorded(shop, order.order_id)

    with pytest.raises(ApplicationError) as refused:
        records.set_order_status(
            StatusChange(order_id=order.order_id, status=stale, reason="stale")
        )
    assert refused.value.type == STALE_TRY and not refused.value.non_retryable
    assert _as_recorded(shop, order.order_id) == before
    assert before[:2] == (ended, "first")
