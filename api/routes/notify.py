"""POST /v1/channels/{channel}/notify: a channel tells us about a payment or refund.

Verify over the raw body (WeChat Pay's platform certificates rotate: a serial
we do not know yet first makes its adapter download them, within its own rate
limit), check that it is about our account and, for a payment, our order's
exact amount, hand it to the order's saga as a signal, store the raw message,
and only then acknowledge in the channel's own terms
(Alipay: `success`): if anything fails before the acknowledgement the channel
retries, so no notification is ever lost. A refused message changes nothing
and is answered with our JSON error in the shape the channel reads as "not
taken" (WeChat Pay adds `{"code": "FAIL", "message": ...}`).

A message is remembered once acted upon (channel_notifications, by the channel's
message id, e.g. Alipay's `notify_id`): the same id again, a channel's retry or
a captured message replayed, is acknowledged and not acted upon again (Alipay's
notifications carry no timestamp to refuse a replay by). It is remembered only
after the saga has it, so a message whose delivery failed is taken on the retry.

Every delivery is counted (`paysaga_channel_notifications_total`): accepted,
ignored (genuine, asks nothing of us, or a repeat), failed (we could not take it
yet, say Temporal was away: the channel sends again), or refused with its reason,
one of `metrics.edge.REFUSAL_REASONS`. An accepted payment also tells how long after the payment at
the channel it reached us (`paysaga_payment_notification_delay_seconds`).

A notification names the payment by its channel reference: the order id, or for
a payment re-issued after a modification the order id and its attempt
(`domain.keys.payment_reference`). The current attempt's payment must be for
the order's amount; one of an attempt a modification replaced is passed to the
saga, which judges it against that attempt and gives it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from fastapi import APIRouter, Depends, Request, Response
from sqlmodel import Session
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth.caller import PUBLIC
from api.deps import AppContext, ContextDep
from api.errors import ApiError, InvalidRequest, NotFound, SignatureInvalid, error_body
from api.openapi_errors import NOTIFICATION_ACKNOWLEDGEMENTS, NOTIFICATION_BODY, error_responses
from api.services.records import now
from channels.base import ChannelAdapter, Notification, NotificationKind
from channels.errors import (
    NotificationFormatError,
    NotificationMismatch,
    NotificationSignatureError,
)
from channels.wechatpay.adapter import WeChatPayAdapter
from db.channel_conversions import record_conversion, refund_conversion_id
from db.payments import current_payment
from db.tables import ChannelNotification, Order, Payment, Refund
from db.writes import insert_ignore
from domain.keys import (
    late_payment_workflow_id,
    order_id_of,
    order_workflow_id,
    refund_workflow_id,
    split_payment_reference,
)
from domain.refunds import RefundNotice
from domain.saga import LatePayment, PaymentSignal
from workflows.late_payment import LatePaymentRefundWorkflow
from workflows.order import OrderWorkflow
from workflows.refund import RefundWorkflow

# Channels sign their messages; the signature is the only credential (no bearer token).
router = APIRouter(prefix="/v1/channels", tags=["channels"], dependencies=[Depends(PUBLIC)])
logger = logging.getLogger(__name__)


class _Refused(Exception):
    """A notification we do not take: the error to answer with, and the reason."""

    def __init__(self, error: ApiError, reason: str) -> None:
        super().__init__(error.message)
        self.error, self.reason = error, reason


@router.post(
    "/{channel}/notify",
    openapi_extra=NOTIFICATION_BODY,
    responses={**NOTIFICATION_ACKNOWLEDGEMENTS, **error_responses(400, 401, 404, 413, 503)},
)
async def receive_notification(channel: str, request: Request, context: ContextDep) -> Response:
    adapter = context.channels.get(channel)
    if adapter is None:  # the path's name is not a label: it could be anything
        context.metrics.notification("unknown", "refused", "unknown_channel")
        raise NotFound("channel_not_found", f"no channel {channel}", "channel")
    body = await request.body()
    if isinstance(adapter, WeChatPayAdapter):  # its signing certificates rotate
        await adapter.learn_signer(request.headers)
    try:
        notification = _parse(adapter, channel, request.headers, body)
        if notification is not None and not await _take(context, channel, notification, body):
            notification = None  # a repeat: acknowledged, nothing more
    except _Refused as refused:
        context.metrics.notification(channel, "refused", refused.reason)
        error = refused.error
        details = error_body(error.error_type, error.code, error.message, error.param)
        answer = adapter.rejection(error.status_code, details)
        return Response(answer.body, status_code=answer.status_code, media_type=answer.media_type)
    except Exception:
        context.metrics.notification(channel, "failed", "none")
        raise
    context.metrics.notification(channel, "ignored" if notification is None else "accepted")
    if notification is not None and notification.paid_at is not None:
        context.metrics.payment_notified(channel, notification.paid_at, now())
    return _answer(adapter)


def _parse(
    adapter: ChannelAdapter, channel: str, headers: Mapping[str, str], body: bytes
) -> Notification | None:
    try:
        return adapter.parse_notification(headers, body)
    except NotificationSignatureError as error:
        logger.warning("rejected a %s notification with a bad signature", channel)
        reason = "stale_timestamp" if error.code == "signature_stale" else "bad_signature"
        invalid = SignatureInvalid("invalid_signature", "signature verification failed")
        raise _Refused(invalid, reason) from None
    except NotificationFormatError as error:
        raise _Refused(InvalidRequest("invalid_notification", error.message), "malformed") from None
    except NotificationMismatch as error:
        logger.warning("rejected a %s notification: %s", channel, error.message)
        mismatch = InvalidRequest("notification_mismatch", error.message)
        raise _Refused(mismatch, "wrong_account") from None


def _answer(adapter: ChannelAdapter) -> Response:
    ack = adapter.acknowledgement()
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)


async def _take(context: AppContext, channel: str, notification: Notification, body: bytes) -> bool:
    """Deliver a verified notification and remember it; False for a repeat of one already
    taken; _Refused when it is not ours to take."""
    if await asyncio.to_thread(_check, context, channel, notification, body):
        return False
    # A payment's notice names no refund: no thread hop to find that out.
    refund = notification.refund_id is not None
    if refund and await asyncio.to_thread(_is_requested_refund, context, notification):
        await _deliver_refund(context, notification)
    else:
        await _deliver(context, channel, notification)
    await asyncio.to_thread(_remember, context, channel, notification, body)
    return True


def _stored_id(channel: str, notification: Notification) -> str:
    return f"{channel}:{notification.notification_id}"


def _check(context: AppContext, channel: str, notification: Notification, body: bytes) -> bool:
    """True when this message id was taken before; _Refused unless it is about one of our
    orders, on this channel, and a payment's amount is exactly the order's."""
    order_id, attempt = split_payment_reference(notification.order_id)
    with context.sessions() as session:
        seen = session.get(ChannelNotification, _stored_id(channel, notification))
        if seen is not None:
            changed = seen.raw_body != body.decode("utf-8", errors="replace")
            logger.info(
                "a %s notification %s was taken before (%s): acknowledged, not acted on again",
                channel,
                notification.notification_id,
                "its content differs" if changed else "the same message",
            )
            return True
        order = session.get(Order, order_id)
        if order is None:
            message = "the notification names no order of ours"
            raise _Refused(NotFound("order_not_found", message, "order_id"), "unknown_order")
        payment = current_payment(session, order_id)
        current_attempt = payment.attempt if payment is not None else 1
        # The buyer may have switched methods on the hosted checkout: each attempt
        # is at its own channel.
        asked = session.get(Payment, (order_id, attempt))
        attempt_channel = asked.channel if asked is not None else order.channel
        # What the attempt asked the channel for: a quoted order's is in the buyer's currency.
        expected = (
            (asked.amount, asked.currency) if asked else (order.payable_amount, order.currency)
        )
        problem = _mismatch(
            order, attempt_channel, channel, notification, (attempt, current_attempt), expected
        )
    if problem is not None:
        reason, message = problem
        logger.warning("rejected a %s notification: %s", channel, message)
        raise _Refused(InvalidRequest("notification_mismatch", message), reason)
    return False


def _remember(context: AppContext, channel: str, notification: Notification, body: bytes) -> None:
    """Keep the raw message, once per channel message id: a repeat is not acted upon."""
    order_id = order_id_of(notification.order_id)
    with context.sessions() as session, session.begin():
        insert_ignore(
            session,
            ChannelNotification,
            {
                "id": _stored_id(channel, notification),
                "channel": channel,
                "order_id": order_id,
                "kind": notification.kind.value,
                "raw_body": body.decode("utf-8", errors="replace"),
                "received_at": now(),
            },
        )
        _keep_refund_conversion(session, channel, order_id, notification)


def _keep_refund_conversion(
    session: Session, channel: str, order_id: str, notification: Notification
) -> None:
    """A wallet that gave a foreign-priced refund back in CNY says how much and at what
    rate; a refund it confirmed only by notification is recorded here (one asked and
    answered at once is recorded by the refund's own activity, under the same key)."""
    if (
        notification.kind != NotificationKind.REFUND_SUCCEEDED
        or notification.refund_id is None
        or notification.payer_amount is None
        or notification.payer_currency is None
        or not notification.channel_rate
    ):
        return
    record_conversion(
        session,
        key=refund_conversion_id(notification.refund_id),
        order_id=order_id,
        channel=channel,
        price=(notification.amount, notification.currency),
        payer=(notification.payer_amount, notification.payer_currency),
        channel_rate=notification.channel_rate,
        refund_id=notification.refund_id,
    )


def _mismatch(
    order: Order,
    attempt_channel: str,
    channel: str,
    notification: Notification,
    attempts: tuple[int, int],
    expected: tuple[int, str],
) -> tuple[str, str] | None:
    """(reason, message) when the notification is not about this order as we know it."""
    if attempt_channel != channel:
        return "wrong_channel", "the order was not placed on this channel"
    attempt, current_attempt = attempts
    if notification.kind != NotificationKind.PAYMENT_SUCCEEDED:
        return None  # a refund's own amount; refunds are confirmed by query
    if attempt > current_attempt:
        return "unknown_attempt", "the order has no such payment attempt"
    if attempt < current_attempt:
        return None  # a replaced attempt's: the saga checks it against that attempt's amount
    if (notification.amount, notification.currency) != expected:
        return "amount_mismatch", "amount or currency differs from the order's"
    if notification.merchant_id not in (None, order.merchant_id):
        return "merchant_mismatch", "merchant differs from the order's"
    return None


def _is_requested_refund(context: AppContext, notification: Notification) -> bool:
    """A refund notification for a refund that runs as its own workflow (not a compensation)."""
    if notification.refund_id is None:
        return False
    with context.reads() as session:
        refund = session.get(Refund, notification.refund_id)
        return refund is not None and refund.requested_by != "system"


async def _deliver_refund(context: AppContext, notification: Notification) -> None:
    assert notification.refund_id is not None
    notice = RefundNotice(
        refund_id=notification.refund_id,
        succeeded=notification.kind == NotificationKind.REFUND_SUCCEEDED,
    )
    handle = context.temporal.get_workflow_handle(refund_workflow_id(notification.refund_id))
    try:
        await handle.signal(RefundWorkflow.refund_notification, notice)
    except RPCError as error:
        # NOT_FOUND: the refund has ended, and this repeats what it already knew.
        if error.status != RPCStatusCode.NOT_FOUND:
            raise


async def _deliver(context: AppContext, channel: str, notification: Notification) -> None:
    order_id, attempt = split_payment_reference(notification.order_id)
    signal = PaymentSignal(
        source=f"notification:{notification.notification_id}",
        kind=notification.kind.value,
        channel_txn_id=notification.channel_txn_id,
        amount=notification.amount,
        currency=notification.currency,
        merchant_id=notification.merchant_id,
        refund_id=notification.refund_id,
        attempt=attempt,
        payer_amount=notification.payer_amount,
        payer_currency=notification.payer_currency,
        channel_rate=notification.channel_rate,
    )
    handle = context.temporal.get_workflow_handle(order_workflow_id(order_id))
    try:
        await handle.signal(OrderWorkflow.payment_notification, signal)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        await _refund_if_late_payment(context, channel, notification)


async def _refund_if_late_payment(
    context: AppContext, channel: str, notification: Notification
) -> None:
    """The saga has ended: a payment for it is late, and the money goes back."""
    if notification.kind != NotificationKind.PAYMENT_SUCCEEDED or not notification.channel_txn_id:
        return  # refund notices for an ended saga need nothing more
    order_id, attempt = split_payment_reference(notification.order_id)
    late = LatePayment(
        order_id=order_id,
        channel=channel,
        channel_txn_id=notification.channel_txn_id,
        amount=notification.amount,
        currency=notification.currency,
        payment_reference=notification.order_id if attempt > 1 else None,
    )
    # WorkflowAlreadyStarted: a repeat of a notification we already acted on.
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await context.temporal.start_workflow(
            LatePaymentRefundWorkflow.run,
            late,
            id=late_payment_workflow_id(channel, notification.channel_txn_id),
            task_queue=context.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
