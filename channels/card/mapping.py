"""Pure mapping between our channel models and the card gateway's wire format.

No I/O here: what to send (form parameters, idempotency keys, search
queries) and what an answer or a webhook means in our terms.

Statuses, as our saga reads them:

    PaymentIntent                                   ours
    requires_payment_method, no last_payment_error  PENDING   (not tried yet)
    requires_payment_method + last_payment_error    DECLINED  (an attempt failed; final for us)
    requires_confirmation, requires_action,
    processing, requires_capture                    PENDING
    succeeded                                       PAID      (channel_txn_id = latest_charge)
    canceled                                        CLOSED

    Refund: pending, requires_action -> PENDING; succeeded -> SUCCEEDED;
            failed, canceled -> FAILED

A gateway object that lacks what we need (our metadata, a succeeded intent
without a charge) raises `UnreadableObject`; the adapter turns that into the
error that fits where it came from.
"""

from __future__ import annotations

from datetime import UTC, datetime

from channels.base import (
    CreatePaymentRequest,
    Notification,
    NotificationKind,
    PaymentState,
    PaymentStatus,
    RefundRequest,
    RefundState,
    RefundStatus,
)
from channels.card import wire

ORDER_ID = "order_id"
MERCHANT_ID = "merchant_id"
REFUND_ID = "refund_id"

_PENDING_INTENT = frozenset(
    {"requires_confirmation", "requires_action", "processing", "requires_capture"}
)
_REFUND_STATUS: dict[wire.RefundStatus, RefundStatus] = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}


class UnreadableObject(ValueError):
    """A gateway object we cannot map (its text names fields, never values)."""


# -- what we send ---------------------------------------------------------------


def create_key(order_id: str) -> str:
    """Idempotency keys come from our ids, so a retry is the same request to the gateway."""
    return f"{order_id}:create"


def cancel_key(order_id: str) -> str:
    return f"{order_id}:cancel"


def refund_key(refund_id: str) -> str:
    return f"{refund_id}:refund"


def create_params(request: CreatePaymentRequest) -> dict[str, str]:
    """`webhook_url` is a per-payment notification URL (as Mollie takes one); a gateway
    that only knows account-level webhook endpoints needs it configured there instead."""
    params = {
        "amount": str(request.amount),
        "currency": request.currency.lower(),
        "description": request.description,
        f"metadata[{ORDER_ID}]": request.order_id,
        f"metadata[{MERCHANT_ID}]": request.merchant_id,
        "webhook_url": request.notify_url,
    }
    if request.return_url:
        params["return_url"] = request.return_url
    return params


def refund_params(request: RefundRequest, payment_intent_id: str) -> dict[str, str]:
    """Our free-text reason is not sent: the gateway's `reason` is an enum
    (duplicate, fraudulent, requested_by_customer); our records keep ours."""
    return {
        "payment_intent": payment_intent_id,
        "amount": str(request.amount),
        f"metadata[{REFUND_ID}]": request.refund_id,
        f"metadata[{ORDER_ID}]": request.order_id,
    }


def metadata_query(key: str, value: str) -> str:
    """`metadata['order_id']:'ord_1'`, in the gateway's search language.

    A quote or backslash in the value is escaped with a backslash, so an id
    cannot end the string and add clauses of its own.
    """
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"metadata['{key}']:'{escaped}'"


# -- what answers mean ----------------------------------------------------------


def payment_status(intent: wire.PaymentIntent) -> PaymentStatus:
    if intent.status == "succeeded":
        return PaymentStatus.PAID
    if intent.status == "canceled":
        return PaymentStatus.CLOSED
    if intent.status in _PENDING_INTENT:
        return PaymentStatus.PENDING
    # requires_payment_method: untried, or the buyer's attempt failed.
    return PaymentStatus.PENDING if intent.last_payment_error is None else PaymentStatus.DECLINED


def payment_state(intent: wire.PaymentIntent) -> PaymentState:
    status = payment_status(intent)
    if status is PaymentStatus.PAID and not intent.latest_charge:
        raise UnreadableObject("a succeeded payment_intent without latest_charge")
    return PaymentState(
        order_id=_metadata(intent.metadata, ORDER_ID, "payment_intent"),
        channel_payment_id=intent.id,
        status=status,
        amount=intent.amount,
        currency=intent.currency.upper(),
        merchant_id=intent.metadata.get(MERCHANT_ID),
        channel_txn_id=intent.latest_charge if status is PaymentStatus.PAID else None,
    )


def refund_state(refund: wire.Refund) -> RefundState:
    status = _REFUND_STATUS[refund.status]
    return RefundState(
        refund_id=_metadata(refund.metadata, REFUND_ID, "refund"),
        order_id=_metadata(refund.metadata, ORDER_ID, "refund"),
        status=status,
        amount=refund.amount,
        currency=refund.currency.upper(),
        failure_reason=(refund.failure_reason or refund.status)
        if status is RefundStatus.FAILED
        else None,
    )


def chosen_intent(intents: list[wire.PaymentIntent]) -> wire.PaymentIntent | None:
    """The intent that answers for an order: the succeeded one if any, else the newest.

    Idempotency keys make one intent per order, but a gateway forgets keys
    after a while (Stripe: 24 hours); if a second intent was ever made, money
    taken on any of them is what matters. Search answers newest first.
    """
    succeeded = [intent for intent in intents if intent.status == "succeeded"]
    candidates = succeeded or intents
    return candidates[0] if candidates else None


# -- what webhooks mean ---------------------------------------------------------


def notification(event: wire.Event) -> Notification | None:
    """Our notification for a webhook, or None for one that asks nothing of us."""
    subject = event.data.object
    if event.type == "refund.updated":
        if not isinstance(subject, wire.Refund):
            raise UnreadableObject("refund.updated about something other than a refund")
        return _refund_notification(event.id, subject)
    if not isinstance(subject, wire.PaymentIntent):
        raise UnreadableObject(f"{event.type} about something other than a payment_intent")
    state = payment_state(subject)
    expected = (
        PaymentStatus.PAID if event.type == "payment_intent.succeeded" else PaymentStatus.DECLINED
    )
    if state.status is not expected:
        # We act on the kind; an event that contradicts its own object is unreadable.
        raise UnreadableObject(f"{event.type} with a payment_intent that is {subject.status}")
    return Notification(
        notification_id=event.id,
        kind=(
            NotificationKind.PAYMENT_SUCCEEDED
            if state.status is PaymentStatus.PAID
            else NotificationKind.PAYMENT_DECLINED
        ),
        order_id=state.order_id,
        channel_payment_id=state.channel_payment_id,
        channel_txn_id=state.channel_txn_id,
        amount=state.amount,
        currency=state.currency,
        merchant_id=state.merchant_id,
        # The gateway makes the event when the intent succeeds: the payment's time.
        paid_at=(
            datetime.fromtimestamp(event.created, UTC)
            if state.status is PaymentStatus.PAID
            else None
        ),
    )


def _refund_notification(event_id: str, refund: wire.Refund) -> Notification | None:
    """A refund's own amount; merchant_id is None (a refund carries only our refund
    metadata, and the saga knows the order's merchant)."""
    state = refund_state(refund)
    if state.status is RefundStatus.PENDING:
        return None  # nothing final yet
    return Notification(
        notification_id=event_id,
        kind=(
            NotificationKind.REFUND_SUCCEEDED
            if state.status is RefundStatus.SUCCEEDED
            else NotificationKind.REFUND_FAILED
        ),
        order_id=state.order_id,
        channel_payment_id=refund.payment_intent,
        channel_txn_id=refund.charge,
        amount=state.amount,
        currency=state.currency,
        merchant_id=None,
        refund_id=state.refund_id,
    )


def _metadata(metadata: dict[str, str], key: str, what: str) -> str:
    value = metadata.get(key)
    if not value:
        raise UnreadableObject(f"{what} without metadata[{key}]")
    return value
