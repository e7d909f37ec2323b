"""Sending a merchant's webhook event again: a new delivery of the same event id.

The event keeps its id and body (merchants dedupe by the id); a delivery still under
way is left alone (it is already sending), and one that ended (acknowledged, or out of
its window) is started anew under the same workflow id.
"""

from __future__ import annotations

import asyncio

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from api.deps import AppContext
from api.errors import InvalidRequest, NotFound
from db.tables import Merchant, WebhookEvent
from domain.keys import webhook_workflow_id
from domain.webhook_events import WebhookDelivery, WebhookRetry
from workflows.merchant_webhook import MerchantWebhookWorkflow


async def resend_event(context: AppContext, merchant_id: str | None, event_id: str) -> None:
    """Start a new delivery of the event; `merchant_id` (None: an operator's) scopes it,
    and another merchant's event is a 404 as one that does not exist."""
    await asyncio.to_thread(_check_event, context, merchant_id, event_id)
    settings = context.settings
    retry = WebhookRetry(
        initial_ms=settings.webhook_retry_initial_ms,
        maximum_ms=settings.webhook_retry_maximum_ms,
        window_seconds=settings.webhook_delivery_window_seconds,
    )
    await context.temporal.start_workflow(
        MerchantWebhookWorkflow.run,
        WebhookDelivery(event_id=event_id, retry=retry, resend=True),
        id=webhook_workflow_id(event_id),
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def _check_event(context: AppContext, merchant_id: str | None, event_id: str) -> None:
    with context.reads() as session:
        event = session.get(WebhookEvent, event_id)
        if event is None or (merchant_id is not None and event.merchant_id != merchant_id):
            raise NotFound("webhook_event_not_found", f"no webhook event {event_id}", "event_id")
        merchant = session.get(Merchant, event.merchant_id)
        if merchant is None or not merchant.webhook_url:
            message = "the merchant has no webhook URL to send the event to"
            raise InvalidRequest("webhook_url_missing", message, "event_id")
