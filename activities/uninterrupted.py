"""Synchronous activities run to their end in their thread, never interrupted.

The SDK cancels a synchronous (threaded) activity by raising CancelledError into its
thread wherever it happens to be (PyThreadState_SetAsyncExc): a few seconds after its
attempt timed out (the worker's own timer), on a cancel or heartbeat's answer, or at a
shutdown's deadline. Raised inside SQLAlchemy's connection pool, between taking its
queue's lock and the `try` that gives it back, it leaves the lock taken: every later
checkout and checkin of the worker waits on it for ever. `make bench` found a worker so,
once an overload had made some attempts overrun: every database activity timing out, the
database untouched for ten minutes, all 38 of its threads waiting on the pool's lock.

So the worker hands each synchronous activity to its thread itself, as an asynchronous
activity awaiting it: the SDK's cancel then has no thread to raise into (it raises only
into a thread it ran itself) and no task to cancel (it cancels none of an activity
declared synchronous), and the step ends as it would have. Our activities are short and
idempotent: a late result of a timed-out attempt is dropped by the server, and the retry
finds the work done. One cancelled while it waited for a thread (an overload) does not
begin. They still see `activity.is_cancelled()`; none of them heartbeats, and none may:
a heartbeat from the thread raises RuntimeError here (the SDK schedules it on the loop
of the thread it is called from). Asynchronous activities are cancelled as tasks: their
blocking work runs in `asyncio.to_thread`, which a cancel leaves to finish, uninterrupted.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio import activity
from temporalio.exceptions import CancelledError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor


class UninterruptedSyncActivities(Interceptor):
    """The worker's interceptor: each synchronous activity run to its end in its thread."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _InTheirThread(next)


class _InTheirThread(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        executor = input.executor
        if _is_async(input.fn) or not isinstance(executor, ThreadPoolExecutor):
            return await self.next.execute_activity(input)
        step = input.fn

        def unless_cancelled(*args: Any) -> Any:  # in the thread, once it has one
            if activity.is_cancelled():  # timed out waiting for a thread: nothing begun
                raise CancelledError("cancelled before it began")
            return step(*args)

        async def awaiting_its_thread(*args: Any) -> Any:
            context = contextvars.copy_context()  # the activity's own: activity.info() and all
            work = functools.partial(context.run, unless_cancelled, *args)
            return await asyncio.get_running_loop().run_in_executor(executor, work)

        return await self.next.execute_activity(dataclasses.replace(input, fn=awaiting_its_thread))


def _is_async(fn: Any) -> bool:
    """As the SDK tells an asynchronous activity: a coroutine function, or an object whose
    `__call__` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
