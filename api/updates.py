"""Sending an update to a saga, again when the server lost it before the saga took it.

If the workflow task that carries an update fails (a worker lost its cached
workflow, the task timed out under load, the saga ended as the update arrived),
the server aborts the update with FAILED_PRECONDITION ("workflow not ready")
although the saga never judged it. Every update we send is idempotent (its effect
is keyed by the order or the refund id), so sending it again is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

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
