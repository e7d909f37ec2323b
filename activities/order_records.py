"""Database activities of the order saga: short transactions, each idempotent by order id.

They run as local activities (a marker event each instead of three events),
synchronously in the worker's thread pool. Those that record a merchant webhook
event (payment, closing, compensation) start its delivery once they committed.
Those that finish an order, take its payment or flag it count it (`metrics.business`)
once they committed, and only when their transaction made the change: under the
order's row lock the status they found tells a first attempt from a retry.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, insert
from sqlmodel import Session, SQLModel, col, delete, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import (
    COUPON_REJECTED,
    ORDER_INVALID,
    business_error,
    retryable_error,
)
from activities.paid_order import (
    AWAITING_PAYMENT,
    ENDED_UNPAID,
    GIVEN_BACK,
    Released,
    Taken,
    merchant_suspended,
    notify_paid,
    release_share,
    set_redemption,
    set_status,
    split_if_captured,
    take_payment,
)
from activities.webhook_starts import StartDelivery
from db.coupons import check_hold_allowed, locked_coupon, reprice
from db.engine import SessionFactory
from db.fx_books import store_quote
from db.order_money import locked_order
from db.party_notifications import notify_party
from db.payments import current_payment
from db.tables import (
    CouponRedemption,
    Order,
    OrderLine,
    OrderReturnUrl,
    Payment,
    Refund,
)
from db.webhook_events import record_order_event
from domain.errors import CouponRejected, DomainError
from domain.order_status import FINAL_STATUSES, OrderStatus
from domain.pricing import PricedOrder
from domain.saga import (
    MethodChosen,
    OrderInput,
    OrderModification,
    OrderRef,
    PaymentRecord,
    Repricing,
    ReviewFlag,
    StatusChange,
)
from domain.split import Split
from domain.webhook_events import EventType
from metrics.business import BusinessMetrics, payment_outcome

# Statuses after which an order no longer holds its coupon. (A rejected order never
# had a row, so it never comes here.)
_RELEASES_COUPON = {OrderStatus.CLOSED, OrderStatus.CANCELLED, OrderStatus.REFUNDED}
# A write of the payment wait (an unpaid ending, a change of lines or method) that found
# the order paid, or ended otherwise, or a compensation's status that found it fulfilled:
# the try of a lost workflow task (see set_order_status). Retried, never a business
# refusal: no saga path of ours asks it, so met anywhere else it is a bug.
STALE_TRY = "StaleTry"
# The statuses the compensation's writes (refunding, compensation_failed, refunded) find:
# a payment recorded but refused (paid; settled for the oldest orders, whose refused
# notification was compensated), one refused before it was recorded (the record still
# awaits it), or the compensation under way (a retry, ops' retry, a replay compensating
# again).
_COMPENSABLE = AWAITING_PAYMENT | {OrderStatus.PAID, OrderStatus.SETTLED} | GIVEN_BACK
STATUS_STEP = "set_order_status"


# Built once (see db.payments): whether an order is recorded; its row and its lines, as
# Core inserts.
_ORDER_ID = select(Order.id).where(col(Order.id) == bindparam("order_id"))
_INSERT_ORDER = insert(SQLModel.metadata.tables["orders"])
_INSERT_LINES = insert(SQLModel.metadata.tables["order_lines"])


def _now() -> datetime:
    return datetime.now(UTC)


class OrderRecords:
    """The saga's database side; receives its session factory so tests wire a real one,
    how to start the delivery of a merchant webhook event, and the counters it moves."""

    def __init__(
        self,
        sessions: SessionFactory,
        start_delivery: StartDelivery,
        metrics: BusinessMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._start_delivery = start_delivery
        self._metrics = metrics if metrics is not None else BusinessMetrics()

    @activity.defn
    def record_order(self, order: OrderInput) -> None:
        """Insert the order and its lines and reserve its coupon, in one transaction."""
        with self._sessions() as session, session.begin():
            if session.exec(_ORDER_ID, params={"order_id": order.order_id}).first() is not None:
                return  # an earlier attempt committed
            # The coupon's row lock first: inserting the order takes a key-share lock on
            # the coupon (its foreign key), and racing orders must queue on the row lock
            # rather than each hold the key share the other's lock waits for.
            try:
                hold = _coupon_hold(session, order) if order.coupon_code else None
            except ApplicationError as refusal:
                # Refused for good (non-retryable) and nothing stored: the order ends
                # REJECTED. Counted at the refusal; only a worker dying before its
                # workflow task completes could run this again.
                if refusal.type == COUPON_REJECTED:
                    self._metrics.order_finished(order.channel, OrderStatus.REJECTED)
                raise
            # Core inserts: no ORM objects to build and flush for rows nothing reads here.
            # The order's row first: SQLite checks the foreign key of each row naming it.
            session.execute(_INSERT_ORDER, _order_row(order))
            if order.quote is not None:
                store_quote(session, order.order_id, order.quote)
            if hold is not None:
                session.add(hold)
            if order.return_url is not None:
                session.add(OrderReturnUrl(order_id=order.order_id, return_url=order.return_url))
            session.execute(_INSERT_LINES, _line_rows(order.order_id, order.priced))

    @activity.defn
    def reprice_order(self, repricing: Repricing) -> PricedOrder:
        """Price an order's new lines, its coupon checked again against the new total and
        today's date (the order already holds it, so its redemption limit is not counted).
        Reads only: a refusal changes nothing."""
        try:
            with self._sessions() as session:
                order = session.get(Order, repricing.order_id)
                if order is None:
                    raise ValueError(f"no order {repricing.order_id}")  # a bug: the saga made it
                return reprice(session, order, repricing.lines, _now())
        except DomainError as refusal:
            kind = COUPON_REJECTED if isinstance(refusal, CouponRejected) else ORDER_INVALID
            raise business_error(kind, refusal.message, refusal.code, refusal.param) from None

    @activity.defn
    def record_modification(self, change: OrderModification) -> None:
        """The order's new lines and amounts; the attempt the channel just closed is kept,
        closed, and the new attempt is added, pending and without a checkout until
        `create_payment` records one."""
        with self._sessions() as session, session.begin():
            order = locked_order(session, change.order_id)
            payment = current_payment(session, order.id)
            if payment is not None and payment.attempt >= change.payment_attempt:
                return  # an earlier try committed
            self._refuse_stale_try(
                "record_modification", order, AWAITING_PAYMENT, "change its lines"
            )
            priced = change.priced
            order.total_amount = priced.total_amount
            order.discount_amount = priced.discount_amount
            order.payable_amount = priced.payable_amount
            order.updated_at = _now()
            session.exec(delete(OrderLine).where(col(OrderLine.order_id) == order.id))
            session.execute(_INSERT_LINES, _line_rows(order.id, priced))
            _replace_attempt(session, order, payment, change.payment_attempt)

    @activity.defn
    def record_method_choice(self, chosen: MethodChosen) -> None:
        """The buyer's method: the order's channel and fee rate from now on; the attempt
        open at another channel (closed there by the saga first) is kept, closed, and the
        new attempt is added, pending, until `create_payment` records its checkout."""
        with self._sessions() as session, session.begin():
            order = locked_order(session, chosen.order_id)
            payment = current_payment(session, order.id)
            if payment is not None and payment.attempt >= chosen.payment_attempt:
                return  # an earlier try committed
            self._refuse_stale_try(
                "record_method_choice", order, AWAITING_PAYMENT, "change its payment method"
            )
            order.channel = chosen.channel
            order.channel_fee_rate = str(chosen.channel_fee_rate)
            order.updated_at = _now()
            _replace_attempt(session, order, payment, chosen.payment_attempt)

    @activity.defn
    def record_payment(self, record: PaymentRecord) -> None:
        """The buyer paid: the payment, the coupon (consumed), the order status and the
        settlement entry, together, so the ledger never lags behind a recorded payment.

        A suspended merchant's payment is recorded but not captured: `settle_order`
        then refuses it and the saga gives the money back.

        An order whose record already ended unpaid (closed, cancelled) takes no payment:
        a try of the saga's step that ended it wrote that, and told the buyer and the
        merchant, and then its workflow task was lost (a worker died, or a payment's
        notice landed as the saga completed), so the saga, replayed, took a payment the
        lost try had not seen. What was told stands: refused (OrderEnded, nothing
        written), and the saga gives the payment back as a late one.

        An order the saga is giving (or gave) its payment back takes none either: a try
        paused while another worker's replay was refused and compensated, and the
        merchant was reactivated since, would capture the money given back. Refused
        (OrderGivenBack, nothing written): a stale try's answer is dropped, and a replay
        whose lost task had begun compensating compensates, as that task did.
        """
        with self._sessions() as session, session.begin():
            taken = take_payment(session, record)
        self._count_payment(taken)

    @activity.defn
    def settle_order(self, ref: OrderRef) -> Split:
        """The split of a captured payment; refused when the payment could not be captured."""
        with self._sessions() as session, session.begin():
            order = locked_order(session, ref.order_id)
            split = split_if_captured(order)
            if split is None:
                raise merchant_suspended(order)
            return split

    def record_and_settle_payment(self, record: PaymentRecord) -> Split:
        """`record_payment` and `settle_order` in one transaction (fulfil_payment's first).

        A suspended merchant's refusal comes once the payment is committed, as
        settle_order's came after record_payment's commit: the saga then gives back a
        payment the record shows. A retry finds the payment, its coupon and its entry
        written and writes none of them again.
        """
        with self._sessions() as session, session.begin():
            taken = take_payment(session, record)
            split = split_if_captured(taken.order)
        self._count_payment(taken)
        if split is None:  # refused past the commit: the payment stays recorded
            raise merchant_suspended(taken.order)
        return split

    @activity.defn
    def notify_parties(self, ref: OrderRef) -> None:
        """Queue the buyer's and the merchant's notifications, record the merchant's
        `order.paid` webhook event and start its delivery, and complete the order."""
        with self._sessions() as session, session.begin():
            event_id = notify_paid(session, locked_order(session, ref.order_id))
        if event_id is not None:
            self._start_delivery(event_id)

    @activity.defn
    def release_funds(self, ref: OrderRef) -> int:
        """The order completed: the merchant's share becomes available; returns the amount."""
        with self._sessions() as session, session.begin():
            released = release_share(session, locked_order(session, ref.order_id))
        return self._count_release(released)

    def notify_and_release(self, ref: OrderRef, release: bool) -> int | None:
        """`notify_parties` and, unless the receipt hold keeps the share (`release`
        False), `release_funds`, in one transaction (fulfil_payment's second); returns
        the amount released, or None when held. Both are idempotent by order id, so a
        retry (say, the delivery's start failed) writes nothing twice."""
        with self._sessions() as session, session.begin():
            order = locked_order(session, ref.order_id)
            event_id = notify_paid(session, order)
            released = release_share(session, order) if release else None
        # Counted before the delivery's start: a retry after a failed start finds the
        # order completed, and would not count it.
        amount = self._count_release(released) if released is not None else None
        if event_id is not None:
            self._start_delivery(event_id)
        return amount

    def _count_release(self, released: Released) -> int:
        if released.newly_completed:
            self._metrics.order_finished(released.channel, OrderStatus.COMPLETED)
        return released.amount

    def _count_payment(self, taken: Taken) -> None:
        if taken.newly_paid and taken.amount > 0:  # zero-amount orders never reach a channel
            self._metrics.payment_succeeded(taken.channel, taken.currency, taken.amount)

    @activity.defn
    def reverse_settlement(self, ref: OrderRef) -> None:
        """Compensation's first step, which moves no money now.

        The money stays where the settlement put it until the compensation refund is
        asked: `ChannelCalls.refund_once` then moves it into refunds in flight, in the
        transaction that records the refund (`db.saga_money`), and it leaves clearing
        only when the channel confirms. (Earlier versions mirrored the settlement entry
        here, taking the money out of clearing before the channel had paid it back;
        orders that did keep that entry, and `db.saga_money` books them from clearing.)
        The step stays, a no-op, so the sagas' commands are unchanged.
        """
        del ref

    @activity.defn
    def set_order_status(self, change: StatusChange) -> None:
        """Move the projection to a new status; final unpaid states release the coupon;
        an ending (closed, cancelled, refunded) is told to the buyer and the merchant.

        An unpaid ending (or the hosted checkout's awaiting_payment, asked as its wait
        begins) is written only over an order still waiting for its payment, or over the
        same ending (a retry). The saga asks for one only before it took a payment, and
        ends once, so a record found paid, or ended otherwise, means this try is stale:
        its workflow task was lost while it ran (its worker paused or cut off from
        Temporal), and another worker, replaying, decided anew (took a payment that landed
        meanwhile; took the buyer's cancel where this try's poll found the payment closed:
        make chaos found that one, `cancelled` overwritten with `closed`) and told the
        parties. What was told stands: nothing is written, and the try fails (retried: its
        worker drops the stale task when Temporal refuses it). `record_payment` guards the
        other order of the same race.

        The compensation's statuses are written only over an order whose payment was
        refused, or that is being given back already (`_COMPENSABLE`): one fulfilled
        (awaiting receipt, completed) or ended unpaid means this try is stale the same way.
        Its fulfil_payment was refused (the merchant suspended), the try paused before it
        wrote `refunding`, and another worker's replay, the merchant reactivated meanwhile,
        captured the payment, told the parties and released the share. The record then
        keeps saying so: refused alike, and the stale try never reaches the buyer's refund.
        (Once `refunding` is written, a replay's payment is refused instead: OrderGivenBack.)
        """
        with self._sessions() as session, session.begin():
            order = locked_order(session, change.order_id)
            if change.status in ENDED_UNPAID:
                endable = AWAITING_PAYMENT | {change.status}
                self._refuse_stale_try(STATUS_STEP, order, endable, f"become {change.status}")
            elif change.status == OrderStatus.AWAITING_PAYMENT:  # the hosted checkout's wait
                self._refuse_stale_try(
                    STATUS_STEP, order, AWAITING_PAYMENT, f"become {change.status}"
                )
            elif change.status in GIVEN_BACK:  # the compensation's
                self._refuse_stale_try(STATUS_STEP, order, _COMPENSABLE, f"become {change.status}")
                if order.status == OrderStatus.REFUNDED and change.status != order.status:
                    # The compensation finished (the buyer has the money back, the parties
                    # were told): a try still compensating is stale (OrderGivenBack after
                    # another worker's replay ended the saga), or the replay of a task that
                    # ran it all; either way the record keeps saying refunded. Not refused:
                    # that replay goes on to the same refund, then writes refunded again.
                    return
            newly = order.status != change.status  # a retry finds it already set
            set_status(order, change.status)
            if change.reason is not None:
                order.close_reason = change.reason
            channel, close_reason = order.channel, order.close_reason
            if change.status in _RELEASES_COUPON:
                set_redemption(session, order, "released")
            if change.status in (OrderStatus.CLOSED, OrderStatus.CANCELLED):
                payment = current_payment(session, order.id)
                if payment is not None and payment.status == "pending":
                    payment.status = "closed"
                    payment.updated_at = _now()
            event_id = _record_ending(session, order, change.status)
        if event_id is not None:
            self._start_delivery(event_id)
        if newly:
            self._count_ending(channel, change.status, close_reason)

    def _refuse_stale_try(
        self, step: str, order: Order, allowed: set[OrderStatus], change: str
    ) -> None:
        """The payment wait's writes are asked only while the order waits for its payment
        (or, for an unpaid ending, once it ended so), the compensation's only before the
        order was fulfilled: a record past that was paid, fulfilled, or ended otherwise, by
        a replay of the saga on another worker while this try's workflow task was lost.
        Nothing is written; each refusal is counted
        (paysaga_stale_writes_refused: a few from a stale try, then none; a steady stream
        is a live saga stuck on a bug)."""
        if order.status not in allowed:
            self._metrics.stale_write_refused(step)
            raise retryable_error(STALE_TRY, f"the order is {order.status}: it cannot {change}")

    def _count_ending(self, channel: str, status: OrderStatus, close_reason: str | None) -> None:
        if status in FINAL_STATUSES:
            self._metrics.order_finished(channel, status)
        if status in (OrderStatus.CLOSED, OrderStatus.CANCELLED):
            self._metrics.payment_failed(channel, payment_outcome(status, close_reason))

    @activity.defn
    def flag_for_review(self, flag: ReviewFlag) -> None:
        with self._sessions() as session, session.begin():
            order = session.exec(
                select(Order).where(Order.id == flag.order_id).with_for_update()
            ).first()
            if order is None:
                return  # a rejected order has no row; the NeedsReview attribute still shows it
            newly_flagged = not order.needs_review  # under the row lock
            reasons = [r for r in (order.review_reason or "").split("; ") if r]
            if flag.reason not in reasons:
                reasons.append(flag.reason)
            order.needs_review = True
            order.review_reason = "; ".join(reasons)
            order.updated_at = _now()
            channel = order.channel
        if newly_flagged:
            self._metrics.order_flagged(channel)

    @activity.defn
    def order_payment_txn_id(self, ref: OrderRef) -> str | None:
        """The channel transaction id the order was paid with, if any."""
        with self._sessions() as session:
            payment = current_payment(session, ref.order_id)  # only the current can be paid
            return payment.channel_txn_id if payment is not None else None


def _record_ending(session: Session, order: Order, status: OrderStatus) -> str | None:
    """An order that ended unpaid, or was given back by the saga, tells buyer and merchant."""
    if status in (OrderStatus.CLOSED, OrderStatus.CANCELLED):
        notify_party(session, order.id, "buyer", order.buyer_id, "order_closed")
        return record_order_event(session, order, EventType.ORDER_CLOSED)
    if status == OrderStatus.REFUNDED:  # the buyer heard of the refund itself (refund_once)
        refund = session.exec(
            select(Refund)
            .where(Refund.order_id == order.id, Refund.reason == "compensation")
            .where(Refund.status == "succeeded")
            .order_by(Refund.created_at.desc())  # type: ignore[attr-defined]
        ).first()
        return record_order_event(session, order, EventType.ORDER_REFUNDED, refund)
    return None


def _coupon_hold(session: Session, order: OrderInput) -> CouponRedemption:
    """The order's hold on its coupon, to add once the order row is written, or a refusal
    (`COUPON_REJECTED`, details: code).

    The coupon row stays locked until the transaction ends, so concurrent orders count
    and insert their holds one at a time: never more than the quantity, nor than a
    buyer's limit.
    """
    assert order.coupon_code is not None
    coupon = locked_coupon(session, order.coupon_code)
    if coupon is None:
        raise business_error(
            COUPON_REJECTED, f"coupon {order.coupon_code} does not exist", "coupon_not_found"
        )
    try:
        check_hold_allowed(session, coupon, order.buyer_id)
    except CouponRejected as refused:
        raise business_error(COUPON_REJECTED, refused.message, refused.code) from None
    return CouponRedemption(
        order_id=order.order_id,
        coupon_code=coupon.code,
        buyer_id=order.buyer_id,
        status="reserved",
        updated_at=_now(),
    )


def _order_row(order: OrderInput) -> dict[str, object]:
    priced = order.priced
    now = _now()
    return {
        "id": order.order_id,
        "merchant_id": order.merchant_id,
        "channel": order.channel,
        "currency": priced.currency,
        "description": order.description,
        "buyer_ref": order.buyer_ref,
        "buyer_id": order.buyer_id,
        "total_amount": priced.total_amount,
        "discount_amount": priced.discount_amount,
        "payable_amount": priced.payable_amount,
        "coupon_code": order.coupon_code,
        "channel_fee_rate": str(order.channel_fee_rate),
        "commission_rate": str(order.commission_rate),
        "payment_timeout_seconds": order.payment_timeout_seconds,
        "status": OrderStatus.CREATED.value,
        # The model's defaults, which a Core insert does not apply (the rest are NULL).
        "needs_review": False,
        "refunded_amount": 0,
        "refunded_fee_amount": 0,
        "refunded_commission_amount": 0,
        "refunded_net_amount": 0,
        "created_at": now,
        "updated_at": now,
    }


def _line_rows(order_id: str, priced: PricedOrder) -> list[dict[str, object]]:
    return [
        {
            "order_id": order_id,
            "line_no": index,
            "sku": line.sku,
            "name": line.name,
            "quantity": line.quantity,
            "unit_amount": line.unit_amount,
            "line_total": line.line_total,
            "discount_amount": line.discount_amount,
            "payable_amount": line.payable_amount,
        }
        for index, line in enumerate(priced.lines)
    ]


def _replace_attempt(session: Session, order: Order, current: Payment | None, attempt: int) -> None:
    """The order's pending attempt (closed at its channel by the saga first) is kept,
    closed, and the next one added, pending, for the order's channel and payable amount
    as they are now."""
    if current is not None and current.status == "pending":
        current.status = "closed"
        current.updated_at = order.updated_at
    session.add(
        Payment(
            order_id=order.id,
            channel=order.channel,
            attempt=attempt,
            status="pending",
            amount=order.payable_amount,
            currency=order.currency,
            updated_at=order.updated_at,
        )
    )
