"""Database activities of the refund workflow: reserve, complete, fail; each idempotent.

The rules that can refuse a refund (window, amount, lines, order state) run in
the reservation's transaction, under the order's row lock, so racing refunds of
one order are judged one after the other and never exceed what was paid.
An outcome is counted (`metrics.business`) after its commit, when the refund's row,
read under its lock, was still pending: a retry finds it decided and counts nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session
from temporalio import activity

from activities.errors import REFUND_REJECTED, business_error
from activities.webhook_starts import StartDelivery
from db.engine import SessionFactory
from db.fx_books import refund_charge
from db.order_money import complete_refund, fail_refund, reserve_refund
from db.party_notifications import notify_party
from db.payments import current_payment
from db.tables import Order, Refund
from db.webhook_events import record_order_event
from domain.keys import stored_payment_reference
from domain.refunds import RefundAsk, RefundFailure, RefundRejected, RefundStatus, RefundTicket
from domain.webhook_events import EventType
from metrics.business import BusinessMetrics, refund_kind


class RefundRecords:
    def __init__(
        self,
        sessions: SessionFactory,
        buyer_window: timedelta,
        start_delivery: StartDelivery,
        metrics: BusinessMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._buyer_window = buyer_window
        self._start_delivery = start_delivery
        self._metrics = metrics if metrics is not None else BusinessMetrics()

    @activity.defn
    def reserve_refund(self, ask: RefundAsk) -> RefundTicket:
        """Judge the ask and move its money into refunds in flight; RefundRejected if refused."""
        try:
            with self._sessions() as session, session.begin():
                refund = reserve_refund(session, ask, self._buyer_window)
                payment = current_payment(session, refund.order_id)  # the paid attempt
                attempt = payment.attempt if payment is not None else 1
                reference = stored_payment_reference(
                    refund.order_id, attempt, payment.channel_payment_id if payment else None
                )
                amount, currency = refund_charge(session, refund)  # quoted: the buyer's money
        except RefundRejected as rejected:
            raise business_error(
                REFUND_REJECTED, rejected.message, rejected.code, rejected.param
            ) from None
        return RefundTicket(
            refund_id=refund.id,
            order_id=refund.order_id,
            channel=refund.channel,
            channel_txn_id=refund.channel_txn_id,
            amount=amount,
            currency=currency,
            reason=refund.reason,
            # A modified order was paid under its last attempt's reference.
            payment_reference=None if attempt == 1 else reference,
        )

    @activity.defn
    def complete_refund(self, refund_id: str) -> None:
        """The channel paid the buyer back: post it, tell the buyer, and send the merchant
        its `order.refunded` webhook event."""
        with self._sessions() as session, session.begin():
            pending = _pending(session, refund_id)
            refund = complete_refund(session, refund_id)
            order = session.get_one(Order, refund.order_id)
            notify_party(session, order.id, "buyer", order.buyer_id, "refund_issued", refund.id)
            event_id = record_order_event(session, order, EventType.ORDER_REFUNDED, refund)
            counted = _counted(refund)
        if event_id is not None:
            self._start_delivery(event_id)
        if pending:
            self._metrics.refund_finished(*counted, succeeded=True)

    @activity.defn
    def fail_refund(self, failure: RefundFailure) -> None:
        with self._sessions() as session, session.begin():
            pending = _pending(session, failure.refund_id)
            counted = _counted(fail_refund(session, failure.refund_id, failure.reason))
        if pending:
            self._metrics.refund_finished(*counted, succeeded=False)


def _pending(session: Session, refund_id: str) -> bool:
    """Whether the refund is undecided, read under its row lock (before deciding it)."""
    refund = session.get(Refund, refund_id, with_for_update=True)
    return refund is not None and refund.status == RefundStatus.PENDING


def _counted(refund: Refund) -> tuple[str, str, str, int]:
    """What a refund's outcome is counted by, read while its session is open."""
    kind = refund_kind(refund.requested_by, refund.reason)
    return refund.channel, kind, refund.currency, refund.amount
