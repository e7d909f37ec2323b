"""A request that waits on an order watch (api.order_watch) while its client is there,
counted in the waits' metric: the API's status-change route (on the status watch) and the
hosted checkout's status request (on its own watch of the order's version) wait the same
way and differ in what they answer when their watch is full."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from starlette.requests import Request

from api.deps import AppContext
from api.order_watch import CallerWaitsFull, StatusWatch, WatchFull


async def wait_for_move(
    context: AppContext,
    watch: StatusWatch,
    request: Request,
    order_id: str,
    unchanged: str,
    timeout_s: float,
    caller: str,
) -> None:
    """Returns once `watch` reads the order other than `unchanged`, `timeout_s` have passed
    or the client has gone. Raises WatchFull or CallerWaitsFull (counted) when the watch
    takes no more waits, of anyone's or of `caller`'s."""
    wait = watch.wait(order_id, unchanged, timeout_s, caller)
    try:
        moved = await _while_connected(request, wait)
    except WatchFull:
        context.metrics.order_wait("full")
        raise
    except CallerWaitsFull:
        context.metrics.order_wait("caller_full")
        raise
    context.metrics.order_wait("gone" if moved is None else "moved" if moved else "unchanged")


async def _while_connected(request: Request, wait: Coroutine[Any, Any, bool]) -> bool | None:
    """`wait`'s answer, or None once the client has gone (a page closed): uvicorn does not
    cancel a request whose client left but runs it to its end, so without this the wait
    would hold its place among the watch's waiting requests until its timeout."""
    waiting = asyncio.create_task(wait)
    gone = asyncio.create_task(_disconnected(request))
    try:
        await asyncio.wait((waiting, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()  # nothing if it is done; else its client is gone (or we are cancelled)
        gone.cancel()
        await asyncio.gather(waiting, gone, return_exceptions=True)
    return None if waiting.cancelled() else waiting.result()


async def _disconnected(request: Request) -> None:
    """Returns once the server tells that the client closed the connection: the request's
    body (a GET's, empty) comes first if no one read it, then uvicorn waits to send the
    disconnect until the connection is lost or the response sent."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
