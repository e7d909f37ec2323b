"""Starting the delivery of a recorded webhook event: one workflow per event id.

The activities that record events (order payment, closing, refunds) call this
right after their transaction commits, so the saga that ran them needs no new
step, and no new history event, to emit an event. The workflow id derives from
the event id, so an activity retried after a start finds the delivery already
under way and starts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.keys import webhook_workflow_id
from domain.webhook_events import WebhookDelivery, WebhookRetry

# What the recording activities are given: start the delivery of this event id.
StartDelivery = Callable[[str], None]

# By name: activities do not import workflows (workflows.merchant_webhook defines it).
DELIVERY_WORKFLOW = "MerchantWebhookWorkflow"
_START_TIMEOUT_SECONDS = 10


class WebhookStarter:
    """Starts delivery workflows on the worker's event loop, from the activities' threads."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        retry: WebhookRetry,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._retry = retry
        self._loop = loop

    def __call__(self, event_id: str) -> None:
        """Start it and wait; a failure raises, and the recording activity is retried."""
        started = asyncio.run_coroutine_threadsafe(self.start(event_id), self._loop)
        started.result(timeout=_START_TIMEOUT_SECONDS)

    async def start(self, event_id: str) -> None:
        # An earlier attempt may have started it already: the event is then on its way.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._client.start_workflow(
                DELIVERY_WORKFLOW,
                WebhookDelivery(event_id=event_id, retry=self._retry),
                id=webhook_workflow_id(event_id),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
