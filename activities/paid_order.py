"""A paid order's writes, each inside the caller's transaction with the order locked: the
payment taken (and captured), the parties told, the merchant's share released.

OrderRecords runs them one a transaction, as the saga's separate steps (`record_payment`,
`settle_order`, `notify_parties`, `release_funds`), and two together, as fulfil_payment's
two transactions. Each is idempotent by order id: run again, it finds its writes done.
What they count (`metrics.business`) is returned, for the caller to count once committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, insert, update
from sqlmodel import Session, SQLModel, col, select
from temporalio.exceptions import ApplicationError

from activities.errors import MERCHANT_SUSPENDED, ORDER_ENDED, ORDER_GIVEN_BACK, business_error
from db.channel_conversions import payment_conversion_id, record_conversion
from db.order_money import capture_payment, locked_order, now, order_split, release_order_funds
from db.party_notifications import notify_party
from db.tables import CouponRedemption, Merchant, Order, Payment
from db.webhook_events import record_order_event
from domain.order_status import OrderStatus
from domain.saga import PaymentRecord
from domain.split import Split
from domain.webhook_events import EventType

# Statuses of an order that ended without a payment: it takes none after (record_payment).
ENDED_UNPAID = {OrderStatus.CLOSED, OrderStatus.CANCELLED}
# Statuses of an order whose payment the saga gave back (compensation): it takes none after.
GIVEN_BACK = {OrderStatus.REFUNDING, OrderStatus.REFUNDED, OrderStatus.COMPENSATION_FAILED}
# Statuses of an order still waiting for its payment: it may change, or end unpaid.
AWAITING_PAYMENT = {OrderStatus.CREATED, OrderStatus.AWAITING_PAYMENT}

# Built once (see db.payments): whether a merchant's payments are captured.
_MERCHANT_STATUS = select(Merchant.status).where(col(Merchant.id) == bindparam("merchant_id"))
# The payment taken, by Core statements (`take_payment`): the order's current attempt, a
# row rather than an ORM object; a zero-payable order's payment; a channel's paid.
_CURRENT_ATTEMPT = (
    select(Payment.attempt, Payment.status, Payment.channel)
    .where(col(Payment.order_id) == bindparam("order_id"))
    .order_by(col(Payment.attempt).desc())
    .limit(1)
)
_PAYMENTS = SQLModel.metadata.tables["payments"]
_INSERT_PAYMENT = insert(_PAYMENTS)
_MARK_PAID = update(_PAYMENTS).where(  # what it sets comes with each execution
    _PAYMENTS.c.order_id == bindparam("where_order_id"),
    _PAYMENTS.c.attempt == bindparam("where_attempt"),
)


@dataclass(frozen=True)
class Taken:
    """A payment recorded under the order's lock, and what to count once committed."""

    order: Order
    newly_paid: bool
    channel: str
    currency: str
    amount: int


@dataclass(frozen=True)
class Released:
    """An order's share released under its lock, and what to count once committed."""

    amount: int
    newly_completed: bool
    channel: str


def take_payment(session: Session, record: PaymentRecord) -> Taken:
    """`OrderRecords.record_payment`'s writes (see its docstring); the order locked here.

    The payment is written by Core statements, and the order's status set once, after
    its capture: the order is then flushed once, at the commit, not once a status.
    """
    order = locked_order(session, record.order_id)
    if order.status in ENDED_UNPAID:
        message = f"the order is {order.status}: a payment for it is late"
        raise business_error(ORDER_ENDED, message, order.status, order.close_reason)
    if order.status in GIVEN_BACK:  # a stale try: capturing now would pay the merchant too
        message = f"the order is {order.status}: its payment was given back"
        raise business_error(ORDER_GIVEN_BACK, message, order.status)
    captured = _merchant_active(session, order.merchant_id)
    # The one a buyer can pay; none: a zero-payable order never had a channel payment.
    current = session.exec(_CURRENT_ATTEMPT, params={"order_id": order.id}).first()
    attempt, status, channel = current if current is not None else (None, None, order.channel)
    newly_paid = status != "paid"  # under the order's lock
    if newly_paid:
        _mark_paid(session, order, record, attempt)
    _keep_conversion(session, order.id, (attempt or 1, channel), record)
    set_redemption(session, order, "consumed")
    if captured:
        capture_payment(session, order)
    if order.status in AWAITING_PAYMENT | {OrderStatus.PAID}:  # a later status stays
        paid = OrderStatus.SETTLED if captured else OrderStatus.PAID
        if order.status != paid:
            set_status(order, paid)
    return Taken(order, newly_paid, order.channel, order.currency, record.amount)


def _mark_paid(session: Session, order: Order, record: PaymentRecord, attempt: int | None) -> None:
    at = now()
    paid = {"status": "paid", "channel_txn_id": record.channel_txn_id, "paid_at": at}
    if attempt is None:
        row = {"order_id": order.id, "channel": order.channel, "attempt": 1}
        money = {"amount": record.amount, "currency": record.currency}
        session.execute(_INSERT_PAYMENT, row | money | paid | {"updated_at": at})
    else:
        key = {"where_order_id": order.id, "where_attempt": attempt}
        session.execute(_MARK_PAID, key | paid | {"updated_at": at})


def split_if_captured(order: Order) -> Split | None:
    """The split of the locked order's captured payment, the order marked settled; None
    when it could not be captured (its merchant was suspended)."""
    if order.merchant_net_amount is None:
        return None
    if order.status == OrderStatus.PAID:
        set_status(order, OrderStatus.SETTLED)
    return order_split(order)


def merchant_suspended(order: Order) -> ApplicationError:
    return business_error(MERCHANT_SUSPENDED, f"merchant {order.merchant_id} is suspended")


def notify_paid(session: Session, order: Order) -> str | None:
    """`OrderRecords.notify_parties`' writes; the webhook event to deliver once committed."""
    notify_party(session, order.id, "buyer", order.buyer_id, "payment_succeeded")
    notify_party(session, order.id, "merchant", order.merchant_id, "order_paid")
    if order.status in (OrderStatus.PAID, OrderStatus.SETTLED):
        set_status(order, OrderStatus.AWAITING_RECEIPT)
    return record_order_event(session, order, EventType.ORDER_PAID)


def release_share(session: Session, order: Order) -> Released:
    newly_completed = order.status != OrderStatus.COMPLETED  # under the order's lock
    amount = release_order_funds(session, order)
    return Released(amount, newly_completed, order.channel)


def _keep_conversion(
    session: Session, order_id: str, payment: tuple[int, str], record: PaymentRecord
) -> None:
    """What a wallet reported converting for a foreign price: the buyer's CNY and its rate.
    `payment`: the attempt paid and its channel."""
    if record.payer_amount is None or record.payer_currency is None or not record.channel_rate:
        return
    attempt, channel = payment
    record_conversion(
        session,
        key=payment_conversion_id(order_id, attempt),
        order_id=order_id,
        channel=channel,
        price=(record.amount, record.currency),
        payer=(record.payer_amount, record.payer_currency),
        channel_rate=record.channel_rate,
    )


def _merchant_active(session: Session, merchant_id: str) -> bool:
    status = session.exec(_MERCHANT_STATUS, params={"merchant_id": merchant_id}).first()
    return status == "active"


def set_status(order: Order, status: OrderStatus) -> None:
    order.status = status
    order.updated_at = now()


def set_redemption(session: Session, order: Order, status: str) -> None:
    if order.coupon_code is None:
        return  # only an order recorded with a coupon holds one (record_order)
    redemption = session.get(CouponRedemption, order.id)
    if redemption is None or redemption.status == status:
        return
    if redemption.status == "released":
        return  # a released coupon is never taken back implicitly
    redemption.status = status
    redemption.updated_at = now()
