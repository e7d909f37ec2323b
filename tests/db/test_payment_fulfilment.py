"""fulfil_payment in its two transactions, on a real database: the payment recorded and
settled, then the notices and the release.

A suspended merchant's refusal comes once the payment is committed (the saga gives back a
payment the record shows), and the step retried after either commit writes nothing twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from temporalio.exceptions import ApplicationError

from activities.channel_calls import ChannelCalls
from activities.errors import MERCHANT_SUSPENDED, ORDER_GIVEN_BACK
from activities.order_records import STALE_TRY, OrderRecords
from activities.payment_settlement import PaymentSettlement
from channels.base import (
    ChannelAdapter,
    CreatedPayment,
    CreatePaymentRequest,
    RefundRequest,
    RefundState,
)
from db.engine import session_factory
from db.ledger import post_entry
from db.payments import current_payment
from db.tables import Merchant, Order, PartyNotification, Payment, WebhookEvent
from domain.keys import compensation_refund_id, funds_release_entry_id
from domain.ledger import AccountKind, EntryKind, release_postings
from domain.order_status import OrderStatus
from domain.pricing import OrderLine, price_order
from domain.refunds import RefundStatus
from domain.saga import OrderInput, PaymentFulfilment, PaymentRecord, RefundOrder, StatusChange
from domain.split import split_payment
from metrics.business import BusinessMetrics
from tests.db.conftest import COMMISSION_RATE, FEE_RATE, Shop, new_id

LINES = [OrderLine(sku="tea-001", name="Oolong tea", quantity=2, unit_amount=1999)]
PAYABLE = 3998


class Deliveries:
    """Starts of webhook deliveries; the first `failures` fail, as Temporal unreachable."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.started: list[str] = []

    def __call__(self, event_id: str) -> None:
        self.started.append(event_id)
        if len(self.started) <= self.failures:
            raise ConnectionError("temporal unreachable")


def _records(shop: Shop, deliveries: Deliveries) -> tuple[OrderRecords, BusinessMetrics]:
    metrics = BusinessMetrics()
    return OrderRecords(session_factory(shop.engine), deliveries, metrics), metrics


def _awaiting_payment(shop: Shop, records: OrderRecords) -> PaymentFulfilment:
    """An order recorded by the saga with its checkout (each step as a retry would run it
    again), and the buyer's payment of it."""
    return _placed(shop, records)[1]


def _placed(shop: Shop, records: OrderRecords) -> tuple[OrderInput, PaymentFulfilment]:
    """`_awaiting_payment`, and the order as the saga asked for its checkout."""
    order = OrderInput(
        order_id=new_id("ord"),
        merchant_id=shop.merchant_id,
        channel=shop.channel,
        priced=price_order(LINES, shop.currency, None, datetime.now(UTC)),
        channel_fee_rate=FEE_RATE,
        commission_rate=COMMISSION_RATE,
        payment_timeout_seconds=900,
        notify_url="http://127.0.0.1/notify",
    )
    records.record_order(order)
    records.record_order(order)  # a retried step records nothing twice
    calls = _channel_calls(shop)
    for _try in range(2):  # nor does a retried checkout
        asyncio.run(calls.create_payment(order))
    with Session(shop.engine) as session:
        attempts = session.exec(select(Payment).where(Payment.order_id == order.order_id)).all()
        assert [(p.attempt, p.status, p.amount, p.channel_payment_id) for p in attempts] == [
            (1, "pending", PAYABLE, f"cp-{order.order_id}")
        ]
        assert session.get_one(Order, order.order_id).status == OrderStatus.AWAITING_PAYMENT
    paid = PaymentRecord(
        order_id=order.order_id, channel_txn_id=new_id("txn"), amount=PAYABLE, currency="CNY"
    )
    return order, PaymentFulfilment(record=paid, release=True)


def _set_merchant(shop: Shop, **values: object) -> None:
    with Session(shop.engine) as session, session.begin():
        session.execute(update(Merchant).where(col(Merchant.id) == shop.merchant_id), values)


def _paid_count(metrics: BusinessMetrics, shop: Shop) -> float | None:
    labels = {"channel": shop.channel, "outcome": "succeeded"}
    return metrics.registry.get_sample_value("paysaga_payments_total", labels)


def _completed_count(metrics: BusinessMetrics, shop: Shop) -> float | None:
    labels = {"channel": shop.channel, "status": "completed"}
    return metrics.registry.get_sample_value("paysaga_orders_finished_total", labels)


def _told(shop: Shop, order_id: str) -> list[str]:
    with Session(shop.engine) as session:
        notices = session.exec(
            select(PartyNotification.id).where(PartyNotification.order_id == order_id)
        ).all()
        events = session.exec(select(WebhookEvent.id).where(WebhookEvent.order_id == order_id))
        return sorted([*notices, *events.all()])


def test_a_suspended_merchant_s_payment_is_committed_before_the_step_refuses(shop: Shop) -> None:
    records, metrics = _records(shop, Deliveries())
    fulfilment = _awaiting_payment(shop, records)
    order_id = fulfilment.record.order_id
    _set_merchant(shop, status="suspended")
    pairs = PaymentSettlement(records)

    for _attempt in range(2):  # a replayed step refuses the same way, and writes nothing more
        with pytest.raises(ApplicationError) as refused:
            pairs.fulfil_payment(fulfilment)
        assert refused.value.type == MERCHANT_SUSPENDED and refused.value.non_retryable
        snapshot = shop.snapshot()
        with Session(shop.engine) as session:
            payment = current_payment(session, order_id)
            order = session.get_one(Order, order_id)
            assert payment is not None and payment.status == "paid"
            assert order.status == OrderStatus.PAID and order.merchant_net_amount is None
        assert snapshot["entries"] == []  # nothing captured: the saga gives it all back
        assert _told(shop, order_id) == []
    assert _paid_count(metrics, shop) == 1

    _compensate(shop, records, fulfilment.record)  # as the saga does on the refusal
    assert shop.snapshot()["orders"] == [(order_id, OrderStatus.REFUNDED, 0, False)]
    balances = shop.balances()
    assert balances[AccountKind.CHANNEL_CLEARING] == 0  # the buyer has it all back
    assert balances[AccountKind.REFUNDS_IN_FLIGHT] == 0
    assert shop.ledger_problems([order_id]) == []


class Channel:
    """A channel that opens every checkout and pays every refund back at once (only what
    create_payment and refund_once ask)."""

    async def create_payment(self, request: CreatePaymentRequest) -> CreatedPayment:
        return CreatedPayment(
            channel_payment_id=f"cp-{request.order_id}",
            checkout_url=f"https://pay.example/{request.order_id}",
        )

    async def refund(self, request: RefundRequest) -> RefundState:
        return RefundState(
            refund_id=request.refund_id,
            order_id=request.order_id,
            status=RefundStatus.SUCCEEDED,
            amount=request.amount,
            currency=request.currency,
        )


def _compensation_refund(shop: Shop, paid: PaymentRecord) -> RefundOrder:
    """The refund the saga's compensation asks for a paid order."""
    return RefundOrder(
        refund_id=compensation_refund_id(paid.order_id),
        order_id=paid.order_id,
        channel=shop.channel,
        channel_txn_id=paid.channel_txn_id,
        amount=paid.amount,
        currency=paid.currency,
        reason="compensation",
    )


def _compensate(shop: Shop, records: OrderRecords, paid: PaymentRecord) -> None:
    """The saga's compensation of a paid order: the buyer's refund, then the order refunded."""
    asyncio.run(_channel_calls(shop).refund_once(_compensation_refund(shop, paid)))
    reason = "merchant suspended"
    records.set_order_status(
        StatusChange(order_id=paid.order_id, status=OrderStatus.REFUNDED, reason=reason)
    )


def test_the_step_retried_after_either_commit_writes_nothing_twice(shop: Shop) -> None:
    _set_merchant(shop, webhook_url="https://merchant.example/hooks")
    deliveries = Deliveries(failures=1)  # the first start fails after the second commit
    records, metrics = _records(shop, deliveries)
    fulfilment = _awaiting_payment(shop, records)
    order_id = fulfilment.record.order_id
    pairs = PaymentSettlement(records)

    # An attempt that died after the payment's commit, before its notices.
    records.record_and_settle_payment(fulfilment.record)
    after_payment = shop.snapshot()
    assert after_payment["orders"] == [(order_id, OrderStatus.SETTLED, 0, False)]
    with pytest.raises(ConnectionError):  # committed both, then the delivery's start failed
        pairs.fulfil_payment(fulfilment)
    after_both = shop.snapshot()
    done = pairs.fulfil_payment(fulfilment)

    assert shop.snapshot() == after_both
    expected = split_payment(PAYABLE, FEE_RATE, COMMISSION_RATE)
    assert done.split == expected and done.notify_refusal is None
    assert done.released_amount == expected.merchant_net_amount
    assert after_both["orders"] == [(order_id, OrderStatus.COMPLETED, 0, True)]
    released = set(cast(list[str], after_both["entries"])) - set(
        cast(list[str], after_payment["entries"])
    )
    assert released == {funds_release_entry_id(order_id)}
    assert len(_told(shop, order_id)) == 3  # the buyer, the merchant, the webhook event
    assert len(set(deliveries.started)) == 1 and len(deliveries.started) == 2
    assert _paid_count(metrics, shop) == 1 and _completed_count(metrics, shop) == 1
    assert shop.ledger_problems([order_id]) == []


def test_a_held_order_is_told_and_its_share_stays_pending(shop: Shop) -> None:
    records, metrics = _records(shop, Deliveries())
    fulfilment = _awaiting_payment(shop, records).model_copy(update={"release": False})
    done = PaymentSettlement(records).fulfil_payment(fulfilment)

    assert done.released_amount is None
    order_id = fulfilment.record.order_id
    assert shop.snapshot()["orders"] == [(order_id, OrderStatus.AWAITING_RECEIPT, 0, False)]
    assert len(_told(shop, order_id)) == 3
    balances = shop.balances()
    net = split_payment(PAYABLE, FEE_RATE, COMMISSION_RATE).merchant_net_amount
    assert balances[AccountKind.MERCHANT_PENDING] == net
    assert balances[AccountKind.MERCHANT_AVAILABLE] == 0
    assert _completed_count(metrics, shop) is None  # the shop's channel never counted one


def _channel_calls(shop: Shop) -> ChannelCalls:
    channels = {shop.channel: cast(ChannelAdapter, Channel())}
    return ChannelCalls(session_factory(shop.engine), channels)


def test_a_release_the_ledger_refuses_leaves_the_parties_told(shop: Shop) -> None:
    """The ledger's refusal of the release (InsufficientFunds, a refusal for good) is retried
    as ever; the notices, the webhook event and its delivery are committed before it, one
    step at a time as the four separate steps did, not held back with the release."""
    _set_merchant(shop, webhook_url="https://merchant.example/hooks")
    deliveries = Deliveries()
    records, metrics = _records(shop, deliveries)
    fulfilment = _awaiting_payment(shop, records)
    order_id = fulfilment.record.order_id
    records.record_and_settle_payment(fulfilment.record)  # an attempt that died after it
    net = split_payment(PAYABLE, FEE_RATE, COMMISSION_RATE).merchant_net_amount
    with Session(shop.engine) as session, session.begin():  # the pending share taken first
        post_entry(
            session,
            entry_id=new_id("drain"),
            kind=EntryKind.FUNDS_RELEASED,
            currency=shop.currency,
            postings=release_postings(shop.merchant_id, shop.currency, net),
            merchant_id=shop.merchant_id,
        )

    with pytest.raises(ApplicationError) as retried:
        PaymentSettlement(records).fulfil_payment(fulfilment)
    assert not retried.value.non_retryable  # never compensated: the payment stands

    assert len(_told(shop, order_id)) == 3  # the buyer, the merchant, the webhook event
    assert len(deliveries.started) == 1
    assert shop.snapshot()["orders"] == [(order_id, OrderStatus.AWAITING_RECEIPT, 0, False)]
    assert _completed_count(metrics, shop) is None


class PendingRefunds(Channel):
    """A channel that has not yet paid a refund back: the saga's compensation waits."""

    async def refund(self, request: RefundRequest) -> RefundState:
        state = await super().refund(request)
        return state.model_copy(update={"status": RefundStatus.PENDING})


@pytest.mark.parametrize("given_back", [OrderStatus.REFUNDING, OrderStatus.REFUNDED])
def test_a_stale_try_after_the_saga_gave_the_payment_back_takes_nothing(
    shop: Shop, given_back: OrderStatus
) -> None:
    """A worker paused in fulfil_payment while its workflow task was lost: another worker
    replayed the saga, was refused (the merchant suspended) and gave the payment back (its
    refund asked, or confirmed too). Then the merchant was reactivated, and the paused try
    goes on: it must not capture the payment given back, release it, or complete the order."""
    records, metrics = _records(shop, Deliveries())
    fulfilment = _awaiting_payment(shop, records)
    paid = fulfilment.record
    _set_merchant(shop, status="suspended")
    pairs = PaymentSettlement(records)
    with pytest.raises(ApplicationError):
        pairs.fulfil_payment(fulfilment)
    if given_back == OrderStatus.REFUNDED:
        _compensate(shop, records, paid)
    else:  # the refund asked, the channel not done with it
        records.set_order_status(StatusChange(order_id=paid.order_id, status=given_back))
        pending = cast(ChannelAdapter, PendingRefunds())
        calls = ChannelCalls(session_factory(shop.engine), {shop.channel: pending})
        asyncio.run(calls.refund_once(_compensation_refund(shop, paid)))
    _set_merchant(shop, status="active")
    given, told = shop.snapshot(), _told(shop, paid.order_id)
    assert given["orders"] == [(paid.order_id, given_back, 0, False)]

    for _attempt in range(2):  # refused alike when retried
        with pytest.raises(ApplicationError) as refused:
            pairs.fulfil_payment(fulfilment)
        assert refused.value.type == ORDER_GIVEN_BACK and refused.value.non_retryable
        assert shop.snapshot() == given
    assert _told(shop, paid.order_id) == told  # nobody told the order was paid
    assert _paid_count(metrics, shop) == 1 and _completed_count(metrics, shop) is None


@pytest.mark.parametrize("ended", [OrderStatus.COMPLETED, OrderStatus.CANCELLED])
def test_a_stale_checkout_write_leaves_a_paid_or_cancelled_order_as_it_is(
    shop: Shop, ended: OrderStatus
) -> None:
    """A worker paused in create_payment, after the channel's answer and before its write,
    while another worker's replay stored the same checkout and the order was then paid (or
    cancelled): the paused try's write finds the checkout stored and the order no longer
    created, and changes nothing (no order lock needed: each statement's WHERE says so)."""
    records, _metrics = _records(shop, Deliveries())
    order, fulfilment = _placed(shop, records)
    if ended == OrderStatus.COMPLETED:
        PaymentSettlement(records).fulfil_payment(fulfilment)
    else:
        records.set_order_status(StatusChange(order_id=order.order_id, status=ended))
    before = shop.snapshot()
    with Session(shop.engine) as session:
        payment = current_payment(session, order.order_id)
        assert payment is not None
        updated_at = session.get_one(Order, order.order_id).updated_at
        shown = (payment.status, payment.channel_payment_id, payment.updated_at, updated_at)

    asyncio.run(_channel_calls(shop).create_payment(order))

    assert shop.snapshot() == before
    assert cast(list[tuple[object, ...]], before["orders"])[0][1] == ended
    with Session(shop.engine) as session:
        payment = current_payment(session, order.order_id)
        assert payment is not None
        updated_at = session.get_one(Order, order.order_id).updated_at
        assert (payment.status, payment.channel_payment_id, payment.updated_at, updated_at) == shown


@pytest.mark.parametrize(
    ("release", "fulfilled"),
    [(True, OrderStatus.COMPLETED), (False, OrderStatus.AWAITING_RECEIPT)],
)
def test_a_stale_compensation_leaves_an_order_another_worker_fulfilled_as_it_is(
    shop: Shop, release: bool, fulfilled: OrderStatus
) -> None:
    """A worker's fulfil_payment was refused (the merchant suspended) and its saga decided
    to give the money back; it paused before writing so, and its workflow task was lost.
    The merchant was reactivated, and another worker's replay took the payment, told the
    parties and completed the order (or holds the share until receipt). The paused try's
    compensation writes, landing last, are refused (retried until its worker drops the
    stale task): the record never says the captured money is being given back."""
    records, metrics = _records(shop, Deliveries())
    fulfilment = _awaiting_payment(shop, records).model_copy(update={"release": release})
    order_id = fulfilment.record.order_id
    pairs = PaymentSettlement(records)
    _set_merchant(shop, status="suspended")
    with pytest.raises(ApplicationError) as suspended:  # the paused worker's try
        pairs.fulfil_payment(fulfilment)
    assert suspended.value.type == MERCHANT_SUSPENDED
    _set_merchant(shop, status="active")
    pairs.fulfil_payment(fulfilment)  # the other worker's replay
    done, told = shop.snapshot(), _told(shop, order_id)
    assert done["orders"] == [(order_id, fulfilled, 0, release)]

    stale = [
        StatusChange(order_id=order_id, status=OrderStatus.REFUNDING),
        StatusChange(order_id=order_id, status=OrderStatus.COMPENSATION_FAILED),
        StatusChange(order_id=order_id, status=OrderStatus.REFUNDED, reason="suspended"),
    ]
    for change in stale:
        with pytest.raises(ApplicationError) as refused:
            records.set_order_status(change)
        assert refused.value.type == STALE_TRY and not refused.value.non_retryable
    assert shop.snapshot() == done
    assert _told(shop, order_id) == told  # nobody told the order was refunded
    refused_count = metrics.registry.get_sample_value(
        "paysaga_stale_writes_refused_total", {"step": "set_order_status"}
    )
    assert refused_count == len(stale)
    refunded = {"channel": shop.channel, "status": "refunded"}
    finished = metrics.registry.get_sample_value("paysaga_orders_finished_total", refunded)
    assert finished is None  # the shop's channel never counted one


def test_the_compensation_s_own_writes_are_taken_as_its_saga_asks_them(shop: Shop) -> None:
    """What the guard above must still let through: the saga's compensation of a refused
    payment writes refunding, then (a refund refused) compensation_failed, refunding again
    on ops' word, and refunded; each retried, and the replay of a lost task that had begun
    compensating writes refunding again. None is counted as stale."""
    records, metrics = _records(shop, Deliveries())
    fulfilment = _awaiting_payment(shop, records)
    paid = fulfilment.record
    _set_merchant(shop, status="suspended")
    with pytest.raises(ApplicationError):
        PaymentSettlement(records).fulfil_payment(fulfilment)  # the order stays paid
    unpaid = _awaiting_payment(shop, records).record  # a payment refused unrecorded

    steps = [  # (order, status asked, status recorded)
        (paid.order_id, OrderStatus.REFUNDING, OrderStatus.REFUNDING),
        (paid.order_id, OrderStatus.COMPENSATION_FAILED, OrderStatus.COMPENSATION_FAILED),
        # ops signalled retry_compensation
        (paid.order_id, OrderStatus.REFUNDING, OrderStatus.REFUNDING),
        (unpaid.order_id, OrderStatus.REFUNDING, OrderStatus.REFUNDING),
        (unpaid.order_id, OrderStatus.REFUNDED, OrderStatus.REFUNDED),
        # a replay, its payment OrderGivenBack: taken, the compensation over already
        (unpaid.order_id, OrderStatus.REFUNDING, OrderStatus.REFUNDED),
    ]
    for order_id, status, recorded in steps:
        for _try in range(2):  # a retried step is taken alike
            records.set_order_status(StatusChange(order_id=order_id, status=status))
        with Session(shop.engine) as session:
            assert session.get_one(Order, order_id).status == recorded
    _compensate(shop, records, paid)  # the refund, then refunded
    with Session(shop.engine) as session:
        assert session.get_one(Order, paid.order_id).status == OrderStatus.REFUNDED
    refused = metrics.registry.get_sample_value(
        "paysaga_stale_writes_refused_total", {"step": "set_order_status"}
    )
    assert refused == 0


def test_a_stale_try_refused_as_given_back_leaves_a_refunded_order_refunded(shop: Shop) -> None:
    """The stale try of the test above, one step further: its saga reads OrderGivenBack as a
    business refusal (`options.business_failure`), so `_fulfil` compensates, and
    `_compensate` first writes `refunding`. The other worker's replay already ended the
    saga `refunded` (the buyer refunded, the parties told): the record must keep saying so,
    not be left `refunding` by a try whose next command (the refund's child) is dropped."""
    records, _metrics = _records(shop, Deliveries())
    fulfilment = _awaiting_payment(shop, records)
    paid = fulfilment.record
    pairs = PaymentSettlement(records)
    _set_merchant(shop, status="suspended")
    with pytest.raises(ApplicationError):
        pairs.fulfil_payment(fulfilment)  # the replay's try: refused, then compensated
    _compensate(shop, records, paid)
    _set_merchant(shop, status="active")
    refunded = shop.snapshot()
    assert refunded["orders"] == [(paid.order_id, OrderStatus.REFUNDED, 0, False)]

    with pytest.raises(ApplicationError) as refused:  # the paused try wakes
        pairs.fulfil_payment(fulfilment)
    assert refused.value.type == ORDER_GIVEN_BACK
    # Its saga compensates: the first write of `_compensate` (retried alike).
    for _try in range(2):
        try:
            records.set_order_status(
                StatusChange(order_id=paid.order_id, status=OrderStatus.REFUNDING)
            )
        except ApplicationError as stale:
            assert stale.type == STALE_TRY and not stale.non_retryable
    assert shop.snapshot() == refunded
