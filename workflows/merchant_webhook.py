"""MerchantWebhookWorkflow: deliver one merchant event until the merchant acknowledges it.

One workflow per event (id `webhook-{event id}`), started by the activity that
recorded the event. Its single activity is retried by Temporal with exponential
backoff and no attempt limit, within the delivery window; every attempt sends
the same event id and body, signed afresh with the merchant's current secret.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.webhook_delivery import WebhookCalls
    from domain.failures import WEBHOOK_NOT_ACKNOWLEDGED
    from domain.webhook_events import WebhookDelivery, WebhookReceipt
    from workflows import options


@workflow.defn
class MerchantWebhookWorkflow:
    @workflow.run
    async def run(self, delivery: WebhookDelivery) -> WebhookReceipt:
        try:
            receipt: WebhookReceipt = await workflow.execute_activity_method(
                WebhookCalls.deliver_webhook, delivery, **options.webhook_delivery(delivery.retry)
            )
        except ActivityError as error:
            # Out of time (or undeliverable): the event row keeps the last error for ops.
            raise ApplicationError(
                f"event {delivery.event_id} was not acknowledged: {error.cause or error}",
                type=WEBHOOK_NOT_ACKNOWLEDGED,
                non_retryable=True,
            ) from None
        return receipt
