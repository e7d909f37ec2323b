"""Sending an update to a saga, again when the server lost it before the saga took it.

If the workflow task that carries an update fails (a worker lost its cached
workflow, the task timed out under load, the saga ended as the update arrived),
the server aborts the update with FAILED_PRECONDITION ("workflow not ready")
although the saga never judged it. Every update we send is idempotent (its effect
is keyed by the order or the refund id), so sending it again is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

T = TypeVar("T")
ATTEMPTS = 3


async def resending_lost(send: Callable[[], Awaitable[T]]) -> T:
    """`send()`, repeated (up to 3 times in all) while the server reports the update lost."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await send()
        except RPCError as error:
            if error.status != RPCStatusCode.FAILED_PRECONDITION or attempt == ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)  # let the server schedule a fresh task
    raise AssertionError("unreachable")


async def update_with_start(
    client: Client, update: Any, argument: object, operation: WithStartWorkflowOperation[Any, Any]
) -> Any:
    """Send `update`, starting the workflow if need be. When the start fails (the workflow
    ran and ended: a repeat), the operation's own copy of that error is read too: asyncio
    logs an unread one at ERROR, with a traceback, for an answer we expect."""
    try:
        return await client.execute_update_with_start_workflow(
            update, argument, start_workflow_operation=operation
        )
    except WorkflowAlreadyStartedError:
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await operation.workflow_handle()
        raise
