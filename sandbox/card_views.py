"""The core's payments and refunds, as the card gateway shows them.

The API answers and the webhooks render through the same functions, so an
intent looks the same whether it was fetched or pushed. Payment `pay_<hex>`
is intent `pi_<hex>`; a refund (which the core keys by our refund_id) is `re_`
and a digest of that id. A charge is the core's `txn_<hex>` as it is, not
`ch_<hex>` as a real gateway's would read: the transaction id every
channel's sandbox reports, and our records keep, is then the same one.

Status, from the core's and `CardMemory`'s:

    pending + 3-D Secure challenge   requires_action (next_action: the card page)
    pending                          requires_payment_method
    declined                         requires_payment_method + last_payment_error
    paid                             succeeded (latest_charge)
    closed                           canceled

Webhooks are built from the core's `EventData`, which has no description or
refund reason, so the gateway's objects carry neither, in answers too.
"""

from __future__ import annotations

import hashlib

from channels.card.wire import (
    Event,
    EventData,
    EventType,
    NextAction,
    PaymentIntent,
    PaymentIntentStatus,
    RedirectToUrl,
    Refund,
    RefundStatus,
)
from sandbox import protocol
from sandbox.card_memory import CardMemory
from sandbox.protocol import PaymentFacts

_PAYMENT_ID_PREFIX = "pay_"
_INTENT_PREFIX = "pi_"
_REFUND_FAILURE = "declined"  # the gateway's word for a refund the bank refused
_EVENT_TYPES: dict[protocol.EventType, EventType] = {
    "payment.succeeded": "payment_intent.succeeded",
    "payment.declined": "payment_intent.payment_failed",
    "refund.succeeded": "refund.updated",
    "refund.failed": "refund.updated",
}


def intent_id(payment_id: str) -> str:
    """`pay_<hex>` -> `pi_<hex>`; an id that already is an intent's stays as it is
    (tests render webhooks for payments they name by the gateway's id)."""
    if payment_id.startswith(_INTENT_PREFIX):
        return payment_id
    return _INTENT_PREFIX + payment_id.removeprefix(_PAYMENT_ID_PREFIX)


def payment_id_of(intent: str) -> str | None:
    """The core's payment_id for an intent id, or None if it is not one of ours."""
    if not intent.startswith(_INTENT_PREFIX):
        return None
    return _PAYMENT_ID_PREFIX + intent.removeprefix(_INTENT_PREFIX)


def refund_object_id(refund_id: str) -> str:
    return "re_" + hashlib.sha256(refund_id.encode()).hexdigest()[:24]


def hosted_url(base_url: str, payment_id: str) -> str:
    return f"{base_url.rstrip('/')}/card/pay/{intent_id(payment_id)}"


def payment_intent(payment: PaymentFacts, base_url: str, memory: CardMemory) -> PaymentIntent:
    page = hosted_url(base_url, payment.payment_id)
    challenged = payment.status == "pending" and memory.challenge(payment.payment_id) is not None
    status = _intent_status(payment.status, challenged=challenged)
    next_action = None
    if challenged:
        return_url = memory.return_url(payment.payment_id)
        next_action = NextAction(
            type="redirect_to_url", redirect_to_url=RedirectToUrl(url=page, return_url=return_url)
        )
    return PaymentIntent(
        id=intent_id(payment.payment_id),
        amount=payment.amount,
        currency=payment.currency.lower(),
        status=status,
        metadata={"order_id": payment.out_trade_no, "merchant_id": payment.merchant_id},
        latest_charge=payment.txn_id,
        last_payment_error=(
            memory.last_error(payment.payment_id) if payment.status == "declined" else None
        ),
        hosted_url=page,
        next_action=next_action,
    )


def _intent_status(core_status: str, *, challenged: bool) -> PaymentIntentStatus:
    if core_status == "paid":
        return "succeeded"
    if core_status == "closed":
        return "canceled"
    if core_status == "pending" and challenged:
        return "requires_action"
    return "requires_payment_method"  # pending, or declined (with last_payment_error)


def refund(
    *,
    refund_id: str,
    order_id: str,
    payment_id: str,
    txn_id: str | None,
    amount: int,
    currency: str,
    status: protocol.RefundStatus,
) -> Refund:
    card_status: RefundStatus = status  # the core's three are among the gateway's
    return Refund(
        id=refund_object_id(refund_id),
        amount=amount,
        currency=currency.lower(),
        payment_intent=intent_id(payment_id),
        charge=txn_id,
        status=card_status,
        failure_reason=_REFUND_FAILURE if status == "failed" else None,
        metadata={"refund_id": refund_id, "order_id": order_id},
    )


def event(core: protocol.Event, base_url: str, memory: CardMemory) -> Event:
    """The webhook for one of the core's events; its id is the core event's, kept on retries."""
    data = core.data
    subject: PaymentIntent | Refund
    if data.refund_id is None:
        subject = payment_intent(data, base_url, memory)
    else:
        subject = refund(
            refund_id=data.refund_id,
            order_id=data.out_trade_no,
            payment_id=data.payment_id,
            txn_id=data.txn_id,
            amount=data.amount,
            currency=data.currency,
            status="succeeded" if core.type == "refund.succeeded" else "failed",
        )
    return Event(
        id=core.id,
        type=_EVENT_TYPES[core.type],
        created=core.created,
        data=EventData(object=subject),
    )
