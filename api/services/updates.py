"""Sending an update (or a query) to a saga, patiently, while no worker can take it.

After a worker crash the server gives the saga's workflow task to another worker only
once the task times out (`workflow_task_timeout_seconds`), and a restarting worker
needs some seconds more. Meanwhile an update waits for a worker, or the server aborts
it with FAILED_PRECONDITION ("workflow not ready") although the saga never judged it;
a query waits for a worker too. Every update we send is idempotent (its effect is
keyed by the order or the refund id), so sending it again is safe: we do, with backoff,
for `api_update_patience_seconds` in all, then answer 503 with Retry-After. An update
sent meanwhile may still take effect once a worker is back; the caller's retry (safe)
then reads the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ServiceUnavailable

T = TypeVar("T")

FIRST_DELAY_SECONDS = 0.1
MAX_DELAY_SECONDS = 2.0
# What the server answers while no worker has the saga's task (or it is briefly
# overloaded); anything else (NOT_FOUND, INVALID_ARGUMENT, ...) is an answer to pass on.
_WORTH_RESENDING = frozenset(
    {
        RPCStatusCode.FAILED_PRECONDITION,  # the update was lost with its workflow task
        RPCStatusCode.DEADLINE_EXCEEDED,  # a query no worker answered in time
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


def saga_unavailable(patience: float) -> ServiceUnavailable:
    """The answer once patience ran out: nothing is lost, retrying (with the same request)
    is safe."""
    return ServiceUnavailable(
        "temporal_unavailable",
        f"the order's saga did not answer within {patience:g} s (its worker is restarting);"
        " the request may still take effect: retry it",
        retry_after=max(1, math.ceil(patience / 10)),
    )


async def resending_lost(send: Callable[[], Awaitable[T]], patience: float) -> T:
    """`send()`, again with backoff while the server reports no worker has taken it, for
    `patience` seconds in all (each try is cut at the deadline); then 503 Retry-After."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    delay = FIRST_DELAY_SECONDS
    while (remaining := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(remaining):
                return await send()
        except TimeoutError:
            break
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            pass  # the server's own long poll ended before a worker took the update
        except RPCError as error:
            if error.status not in _WORTH_RESENDING:
                raise
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, MAX_DELAY_SECONDS)
    raise saga_unavailable(patience)


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
