"""Every workflow this process starts gets the configured workflow-task timeout.

The timeout is how long the server waits for a worker that took a workflow task
before it hands the task to another: after a worker dies mid-task, its workflows
wait this long. Temporal's default is 10 s; `workflow_task_timeout_seconds`
sets it once for every start (orders, refunds, settlements, webhooks) here,
rather than at each call.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)


class WorkflowTaskTimeout(Interceptor):
    def __init__(self, timeout: timedelta) -> None:
        self.timeout = timeout

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Outbound(next, self.timeout)


class _Outbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, timeout: timedelta) -> None:
        super().__init__(next)
        self.timeout = timeout

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        if input.task_timeout is None:  # a start that names its own keeps it
            input.task_timeout = self.timeout
        return await self.next.start_workflow(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        start = input.start_workflow_input
        if start.task_timeout is None:
            input.start_workflow_input = replace(start, task_timeout=self.timeout)
        return await self.next.start_update_with_start_workflow(input)
