"""Channel activities: every call to a payment channel goes through here.

Each call is idempotent at the channel: payments are keyed by our order id
(out_trade_no) and refunds by a refund id derived from the order id, so a
retried activity finds the earlier attempt's payment or refund instead of
making a second one. A payment re-issued after a modification has its own
out_trade_no (`domain.keys.payment_reference`), which the messages carry as
`payment_reference`; every call about that payment or its refunds uses it.
A saga's own refund (compensation, late payment) is counted (`metrics.business`)
when the store that records its final outcome finds the row still pending, and its
money is booked with its row (`db.saga_money`): given back before the channel is
asked, out of clearing when the channel confirms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import bindparam, update
from sqlmodel import SQLModel, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import (
    CHANNEL_REJECTED,
    CHANNEL_UNAVAILABLE,
    PAYMENT_NOT_FOUND,
    REFUND_PENDING,
    REFUND_REFUSED,
    business_error,
    retryable_error,
)
from channels.base import (
    ChannelAdapter,
    CloseResult,
    CreatePaymentRequest,
    PaymentState,
    RefundRequest,
    RefundState,
    RefundStatus,
)
from channels.errors import ChannelRejected, ChannelUnavailable, PaymentNotFound
from db.channel_conversions import record_conversion, refund_conversion_id
from db.engine import SessionFactory
from db.party_notifications import notify_party
from db.saga_money import book_refund_asked, book_refund_confirmed
from db.tables import Order, Payment, Refund
from db.writes import insert_ignore
from domain.checkout import payment_description, purchase_summary
from domain.keys import payment_reference
from domain.order_status import OrderStatus
from domain.refunds import RefundTicket
from domain.saga import Checkout, OrderInput, OrderRef, RefundOrder
from metrics.business import BusinessMetrics, refund_kind


def _trade_no(about: OrderRef | RefundOrder | RefundTicket) -> str:
    """The payment's out_trade_no at the channel: the order id, or a re-issued one's own."""
    return about.payment_reference or about.order_id


def _description(order: OrderInput) -> str:
    """What the channel's cashier shows the buyer: the shop and the goods, not our ids."""
    goods = order.description or purchase_summary(order.priced.lines)
    return payment_description(order.merchant_name, goods) or order.order_id


# Built once (see db.payments), Core statements on rows this step does not otherwise read:
# a re-issued attempt's checkout, written once; the order waiting for its payment.
_PAYMENTS = SQLModel.metadata.tables["payments"]
_ORDERS = SQLModel.metadata.tables["orders"]
_RECORD_CHECKOUT = update(_PAYMENTS).where(
    _PAYMENTS.c.order_id == bindparam("where_order_id"),
    _PAYMENTS.c.attempt == bindparam("where_attempt"),
    _PAYMENTS.c.channel_payment_id.is_(None),
)  # what it sets comes with each execution (a bind may not take a SET column's name)
_AWAIT_PAYMENT = (
    update(_ORDERS)
    .where(
        _ORDERS.c.id == bindparam("where_order_id"),
        _ORDERS.c.status == OrderStatus.CREATED.value,
    )
    .values(status=OrderStatus.AWAITING_PAYMENT.value, updated_at=bindparam("now"))
)


def _refund_request(refund: RefundOrder | RefundTicket) -> RefundRequest:
    return RefundRequest(
        refund_id=refund.refund_id,
        order_id=_trade_no(refund),
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
    )


def _refused(ticket: RefundTicket, reason: str) -> RefundState:
    return RefundState(
        refund_id=ticket.refund_id,
        order_id=ticket.order_id,
        status=RefundStatus.FAILED,
        amount=ticket.amount,
        currency=ticket.currency,
        failure_reason=reason,
    )


@contextmanager
def _translated_channel_errors() -> Iterator[None]:
    """Map adapter errors onto the saga's retryable / non-retryable error types."""
    try:
        yield
    except ChannelUnavailable as error:
        raise retryable_error(CHANNEL_UNAVAILABLE, error.message) from None
    except PaymentNotFound as error:
        raise business_error(PAYMENT_NOT_FOUND, error.message) from None
    except ChannelRejected as error:
        raise business_error(CHANNEL_REJECTED, f"{error.code}: {error.message}") from None


class ChannelCalls:
    def __init__(
        self,
        sessions: SessionFactory,
        channels: Mapping[str, ChannelAdapter],
        metrics: BusinessMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._channels = channels
        self._metrics = metrics if metrics is not None else BusinessMetrics()

    @activity.defn
    async def create_payment(self, order: OrderInput) -> Checkout:
        """Create the payment at the channel (idempotent by its reference) and record its
        checkout; a modified order's next attempt has its own reference, which the saga
        names (one scheduled before it did is an attempt of the "-" form)."""
        request = CreatePaymentRequest(
            order_id=order.payment_reference
            or payment_reference(order.order_id, order.payment_attempt, legacy=True),
            merchant_id=order.merchant_id,
            amount=order.charge_amount,  # a quoted order: the buyer's currency
            currency=order.charge_currency,
            description=_description(order),
            notify_url=order.notify_url,
            return_url=order.checkout_url,
        )
        with _translated_channel_errors():
            created = await self._channels[order.channel].create_payment(request)
        checkout = Checkout(
            channel_payment_id=created.channel_payment_id,
            checkout_url=created.checkout_url,
            qr_payload=created.qr_payload,
        )
        await asyncio.to_thread(self._store_checkout, order, checkout)
        return checkout

    @activity.defn
    async def query_payment(self, ref: OrderRef) -> PaymentState:
        with _translated_channel_errors():
            return await self._channels[ref.channel].query_payment(_trade_no(ref))

    @activity.defn
    async def close_payment(self, ref: OrderRef) -> CloseResult:
        """Close at the channel; if the buyer paid first, the result says so."""
        with _translated_channel_errors():
            return await self._channels[ref.channel].close_payment(_trade_no(ref))

    @activity.defn
    async def refund_payment(self, refund: RefundOrder) -> RefundState:
        """Refund at the channel and wait (by retrying) until the refund is final.

        Kept for histories recorded before `refund_once` + timers replaced it.
        """
        state = await self.refund_once(refund)
        if state.status == RefundStatus.PENDING:
            raise retryable_error(REFUND_PENDING, f"refund {refund.refund_id} is pending")
        if state.status == RefundStatus.FAILED:
            raise business_error(REFUND_REFUSED, state.failure_reason or "refund refused")
        return state

    @activity.defn
    async def refund_once(self, refund: RefundOrder) -> RefundState:
        """Ask the channel for a saga's own refund (compensation, late payment) and record
        the answer, pending included: the saga waits for the outcome with timers."""
        await asyncio.to_thread(self._store_refund, refund, None)
        with _translated_channel_errors():
            state = await self._channels[refund.channel].refund(_refund_request(refund))
        await asyncio.to_thread(self._store_refund, refund, state)
        await asyncio.to_thread(self._keep_refund_conversion, refund, state)
        return state

    @activity.defn
    async def check_refund(self, refund: RefundOrder) -> RefundState:
        """What became of a pending refund, recorded."""
        with _translated_channel_errors():
            state = await self._channels[refund.channel].query_refund(
                refund.refund_id, _trade_no(refund)
            )
        await asyncio.to_thread(self._store_refund, refund, state)
        await asyncio.to_thread(self._keep_refund_conversion, refund, state)
        return state

    @activity.defn
    async def request_refund(self, ticket: RefundTicket) -> RefundState:
        """Ask the channel for an accepted refund; a refusal comes back as a failed state.

        The refund id is the channel's idempotency key. A retry after an unknown
        outcome (a timeout, a 5xx) asks the channel what became of the refund first,
        and only asks for it again if the channel has never heard of it.
        """
        state = await self._ask_refund(ticket)
        await asyncio.to_thread(self._keep_refund_conversion, ticket, state)
        return state

    async def _ask_refund(self, ticket: RefundTicket) -> RefundState:
        channel = self._channels[ticket.channel]
        if activity.info().attempt > 1:
            try:
                with _translated_channel_errors():
                    return await channel.query_refund(ticket.refund_id, _trade_no(ticket))
            except ApplicationError as error:
                if error.type != PAYMENT_NOT_FOUND:
                    raise
        try:
            with _translated_channel_errors():
                return await channel.refund(_refund_request(ticket))
        except ApplicationError as error:
            if error.type != CHANNEL_REJECTED:
                raise
            return _refused(ticket, error.message)

    @activity.defn
    async def query_refund(self, ticket: RefundTicket) -> RefundState:
        with _translated_channel_errors():
            state = await self._channels[ticket.channel].query_refund(
                ticket.refund_id, _trade_no(ticket)
            )
        await asyncio.to_thread(self._keep_refund_conversion, ticket, state)
        return state

    def _keep_refund_conversion(
        self, ticket: RefundTicket | RefundOrder, state: RefundState
    ) -> None:
        """A wallet gave a foreign-priced refund back in CNY: keep what it reported."""
        if (
            state.status != RefundStatus.SUCCEEDED
            or state.payer_amount is None
            or state.payer_currency is None
            or not state.channel_rate
        ):
            return
        with self._sessions() as session, session.begin():
            record_conversion(
                session,
                key=refund_conversion_id(ticket.refund_id),
                order_id=ticket.order_id,
                channel=ticket.channel,
                price=(ticket.amount, ticket.currency),
                payer=(state.payer_amount, state.payer_currency),
                channel_rate=state.channel_rate,
                refund_id=ticket.refund_id,
            )

    def _store_checkout(self, order: OrderInput, checkout: Checkout) -> None:
        now = datetime.now(UTC)
        shown = {
            "channel_payment_id": checkout.channel_payment_id,
            "checkout_url": checkout.checkout_url,
            "qr_payload": checkout.qr_payload,
            "updated_at": now,
        }
        attempt = {
            "order_id": order.order_id,
            "attempt": order.payment_attempt,
            "channel": order.channel,
            "status": "pending",
            "amount": order.charge_amount,
            "currency": order.charge_currency,
        }
        with self._sessions() as session, session.begin():
            if not insert_ignore(session, Payment, attempt | shown):
                # A re-issued payment: `record_modification` added the attempt's row (or
                # an earlier try recorded this checkout, and this changes nothing).
                key = {"where_order_id": order.order_id, "where_attempt": order.payment_attempt}
                session.execute(_RECORD_CHECKOUT, key | shown)
            session.execute(_AWAIT_PAYMENT, {"where_order_id": order.order_id, "now": now})

    def _store_refund(self, refund: RefundOrder, state: RefundState | None) -> None:
        with self._sessions() as session, session.begin():
            now = datetime.now(UTC)
            # The order first, as every entry of an order locks it before its accounts.
            session.exec(select(Order).where(Order.id == refund.order_id).with_for_update()).first()
            row = session.get(Refund, refund.refund_id, with_for_update=True)
            decided = state is not None and state.status in _FINAL_REFUND
            newly_decided = decided and (row is None or row.status == RefundStatus.PENDING)
            if row is None:
                row = Refund(
                    id=refund.refund_id,
                    order_id=refund.order_id,
                    channel=refund.channel,
                    channel_txn_id=refund.channel_txn_id,
                    amount=refund.amount,
                    currency=refund.currency,
                    reason=refund.reason,
                    status=RefundStatus.PENDING,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
            session.flush()  # the refund's row first: its entries follow it
            book_refund_asked(session, row)
            if state is not None:
                if state.status == RefundStatus.SUCCEEDED:  # the buyer has the money back
                    book_refund_confirmed(session, row)
                    order = session.get(Order, row.order_id)
                    buyer_id = order.buyer_id if order is not None else None
                    notify_party(session, row.order_id, "buyer", buyer_id, "refund_issued", row.id)
                row.status = state.status
                row.failure_reason = state.failure_reason
                row.updated_at = now
            kind = refund_kind(row.requested_by, row.reason)
        if newly_decided:
            assert state is not None
            succeeded = state.status == RefundStatus.SUCCEEDED
            self._metrics.refund_finished(
                refund.channel, kind, refund.currency, refund.amount, succeeded
            )


_FINAL_REFUND = (RefundStatus.SUCCEEDED, RefundStatus.FAILED)
