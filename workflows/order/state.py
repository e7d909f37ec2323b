"""What the order saga holds, and the small steps every part of it takes: recording a
status, flagging for review, naming a payment attempt at its channel, taking a payment.

Each part of the saga (refunds, compensation, modifications, the payment wait, the
fulfilment) is a class that builds on the one before it, down to OrderState here;
OrderWorkflow (workflow.py) is the last of them and holds the handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.order_records import OrderRecords
    from channels.base import NotificationKind, PaymentState, PaymentStatus
    from domain.inbox import already_judged
    from domain.keys import payment_reference
    from domain.modifiability import PaymentStanding
    from domain.order_status import OrderStatus
    from domain.payment_check import payment_mismatch
    from domain.saga import (
        CancelRequest,
        Checkout,
        MethodChoice,
        ModifyRequest,
        OrderInput,
        OrderRef,
        PaymentSignal,
        ReviewFlag,
        StatusChange,
    )
    from domain.split import Split
    from workflows import options
    from workflows.search_attributes import NEEDS_REVIEW, ORDER_STATUS

T = TypeVar("T")
Compensation = Callable[[], Awaitable[None]]


def signal_from_state(
    state: PaymentState, source: str, attempt: int | None = None
) -> PaymentSignal:
    """What our own look at the payment found, as the notice the channel would have sent
    (a payment closed at the channel reads as declined)."""
    kind = (
        NotificationKind.PAYMENT_SUCCEEDED
        if state.status == PaymentStatus.PAID
        else NotificationKind.PAYMENT_DECLINED
    )
    return PaymentSignal(
        source=source,
        kind=kind,
        channel_txn_id=state.channel_txn_id,
        amount=state.amount,
        currency=state.currency,
        merchant_id=state.merchant_id,
        attempt=attempt,
        payer_amount=state.payer_amount,
        payer_currency=state.payer_currency,
        channel_rate=state.channel_rate,
    )


class OrderState:
    def __init__(self, order: OrderInput) -> None:
        self._order = order
        self._ref = OrderRef(order_id=order.order_id, channel=order.channel)
        self._status = OrderStatus.CREATED
        # The status our starter set as our search attribute, as it says.
        self._published_status = order.started_status or OrderStatus.CREATED
        self._steps: list[str] = []
        self._inbox: list[PaymentSignal] = []
        self._seen_txn_ids: set[str] = set()
        self._checkout: Checkout | None = None
        self._paid: PaymentSignal | None = None
        self._cancel: CancelRequest | None = None
        self._split: Split | None = None
        self._close_reason: str | None = None
        self._review_reasons: list[str] = []
        self._refunded_amount = 0
        self._compensations: list[Compensation] = []
        self._retry_compensation = False
        self._compensation_attempt = 1
        self._receipt_confirmed = False
        self._released_amount: int | None = None
        # Modifications: taken while the run loop waits for the buyer, one at a time; each
        # update waits for its answer under its ticket (None: applied).
        self._awaiting_payment = False
        self._modifications_asked = 0
        self._modification: tuple[int, ModifyRequest] | None = None
        self._modification_answers: dict[int, ApplicationError | None] = {}
        self._replaced_attempts: dict[int, OrderInput] = {}
        # The buyer's choice of method on the hosted checkout, taken like a modification.
        self._choices_asked = 0
        self._choice: tuple[int, MethodChoice] | None = None
        self._choice_answers: dict[int, ApplicationError | None] = {}
        # The payment wait's next poll (orders of version 2): left running when the payment
        # comes first, cancelled only if the saga goes on to wait for something else.
        self._poll_timer: asyncio.Task[None] | None = None

    def _drop_poll_timer(self) -> None:
        """The saga waits for something else now: the payment's poll timer would only wake
        it for nothing (a TIMER_FIRED and a workflow task)."""
        if self._poll_timer is not None and not self._poll_timer.done():
            self._poll_timer.cancel()
        self._poll_timer = None

    def _standing(self) -> PaymentStanding:
        """Where the order stands towards its payment (domain.modifiability decides)."""
        return PaymentStanding(
            status=self._status,
            paid=self._paid is not None,
            cancelling=self._cancel is not None,
            awaiting_payment=self._awaiting_payment,
            channel=self._order.channel,
            payment_attempt=self._order.payment_attempt,
        )

    async def _accept(self, signal: PaymentSignal) -> bool:
        """Take the payment as the order's when it is what the order asked; a mismatch is
        flagged for ops (and its transaction judged: never refunded blindly)."""
        if already_judged(signal, self._seen_txn_ids):
            return False  # a duplicate of a payment already judged
        problem = payment_mismatch(self._order, signal)
        if problem is not None:
            if signal.channel_txn_id:  # ops decide about this money; never refund it blindly
                self._seen_txn_ids.add(signal.channel_txn_id)
            await self._flag_for_review(problem)
            return False
        assert signal.channel_txn_id is not None
        self._seen_txn_ids.add(signal.channel_txn_id)
        self._paid = signal
        return True

    # -- the order's records ---------------------------------------------------

    async def _db(self, method: Callable[[Any, Any], T], argument: object) -> T:
        return await workflow.execute_local_activity_method(method, argument, **options.DB_WRITE)

    async def _finish(self, status: OrderStatus, reason: str) -> None:
        self._close_reason = reason
        await self._set_status(status, reason)

    async def _set_status(self, status: OrderStatus, reason: str | None = None) -> None:
        change = StatusChange(order_id=self._order.order_id, status=status, reason=reason)
        await self._db(OrderRecords.set_order_status, change)
        self._status = status
        self._publish(status)

    async def _flag_for_review(self, reason: str) -> None:
        if reason not in self._review_reasons:
            self._review_reasons.append(reason)
            flag = ReviewFlag(order_id=self._order.order_id, reason=reason)
            await self._db(OrderRecords.flag_for_review, flag)
            workflow.upsert_search_attributes([NEEDS_REVIEW.value_set(True)])

    def _publish(self, status: OrderStatus) -> None:
        """Keep the OrderStatus search attribute current (one history event per change)."""
        if status != self._published_status:
            self._published_status = status
            workflow.upsert_search_attributes([ORDER_STATUS.value_set(status.value)])

    # -- payment attempts at their channels ------------------------------------

    def _channel_of(self, attempt: int | None) -> str:
        """The channel an attempt was opened at (a switch of method changes it)."""
        replaced = self._replaced_attempts.get(attempt or 1)
        if replaced is not None and (attempt or 1) != self._order.payment_attempt:
            return replaced.channel
        return self._order.channel

    def _payment_ref(self) -> OrderRef:
        """The current payment at the channel; the first attempt's is the order id."""
        reference = self._reference_of(self._order.payment_attempt)
        if reference is None:
            return self._ref
        return self._ref.model_copy(update={"payment_reference": reference})

    def _reference_of(self, attempt: int | None) -> str | None:
        """The channel reference of a payment attempt; None for the first (the order id)."""
        if attempt is None or attempt == 1:
            return None
        issued = self._order if attempt == self._order.payment_attempt else None
        issued = issued or self._replaced_attempts.get(attempt)
        if issued is not None and issued.payment_reference is not None:
            return issued.payment_reference
        return payment_reference(self._order.order_id, attempt)
