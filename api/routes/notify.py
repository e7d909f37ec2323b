"""POST /v1/channels/{channel}/notify: a channel tells us about a payment or refund.

Verify over the raw body, store the raw message, hand it to the order's saga
as a signal, and only then acknowledge: if anything fails before the
acknowledgement the channel retries, so no notification is ever lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, Request, Response
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AppContext, ContextDep
from api.errors import InvalidRequest, NotFound, SignatureInvalid
from api.records import now
from channels.base import Notification, NotificationKind
from channels.errors import NotificationFormatError, NotificationSignatureError
from db.tables import ChannelNotification, Order, Refund
from db.writes import insert_ignore
from domain.keys import late_payment_workflow_id, order_workflow_id, refund_workflow_id
from domain.refunds import RefundNotice
from domain.saga import LatePayment, PaymentSignal
from workflows.late_payment import LatePaymentRefundWorkflow
from workflows.order import OrderWorkflow
from workflows.refund import RefundWorkflow

router = APIRouter(prefix="/v1/channels", tags=["channels"])
logger = logging.getLogger(__name__)


@router.post("/{channel}/notify")
async def receive_notification(channel: str, request: Request, context: ContextDep) -> Response:
    adapter = context.channels.get(channel)
    if adapter is None:
        raise NotFound("channel_not_found", f"no channel {channel}", "channel")
    body = await request.body()
    try:
        notification = adapter.parse_notification(request.headers, body)
    except NotificationSignatureError:
        logger.warning("rejected a %s notification with a bad signature", channel)
        raise SignatureInvalid("invalid_signature", "signature verification failed") from None
    except NotificationFormatError as error:
        raise InvalidRequest("invalid_notification", error.message) from None
    known = await asyncio.to_thread(_store, context, channel, notification, body)
    if not known:
        raise NotFound("order_not_found", "the notification names no order of ours", "order_id")
    if await asyncio.to_thread(_is_requested_refund, context, notification):
        await _deliver_refund(context, notification)
    else:
        await _deliver(context, channel, notification)
    ack = adapter.acknowledgement()
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)


def _store(context: AppContext, channel: str, notification: Notification, body: bytes) -> bool:
    """Keep the raw message (once per channel message id); True when the order exists."""
    with context.sessions() as session, session.begin():
        insert_ignore(
            session,
            ChannelNotification,
            {
                "id": f"{channel}:{notification.notification_id}",
                "channel": channel,
                "order_id": notification.order_id,
                "kind": notification.kind.value,
                "raw_body": body.decode("utf-8", errors="replace"),
                "received_at": now(),
            },
        )
        return session.get(Order, notification.order_id) is not None


def _is_requested_refund(context: AppContext, notification: Notification) -> bool:
    """A refund notification for a refund that runs as its own workflow (not a compensation)."""
    if notification.refund_id is None:
        return False
    with context.sessions() as session:
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
    signal = PaymentSignal(
        source=f"notification:{notification.notification_id}",
        kind=notification.kind.value,
        channel_txn_id=notification.channel_txn_id,
        amount=notification.amount,
        currency=notification.currency,
        merchant_id=notification.merchant_id,
        refund_id=notification.refund_id,
    )
    handle = context.temporal.get_workflow_handle(order_workflow_id(notification.order_id))
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
    late = LatePayment(
        order_id=notification.order_id,
        channel=channel,
        channel_txn_id=notification.channel_txn_id,
        amount=notification.amount,
        currency=notification.currency,
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
