"""Delivering signed notifications, with retries, the way a real channel does.

Each event gets its own asyncio task. An attempt that does not end in a 2xx
(an error status, a refused connection, a timeout) is retried after
`retry_base_ms`, then double that, and so on, up to `max_attempts` attempts.
Every attempt is signed afresh (a new timestamp) over the exact bytes sent,
and keeps the event id. The tasks are kept so that shutdown can cancel them.
Attempts are recorded under the key the control API reads them by: a payment
or refund event's out_trade_no, a payout event's payout_id.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable

import httpx

from channels.sandbox.protocol import Event, PayoutEvent
from channels.sandbox.store import DeliveryAttempt
from channels.signature import SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

RecordAttempt = Callable[[str, DeliveryAttempt], Awaitable[None]]
AnyEvent = Event | PayoutEvent


class DeliveryMode(enum.StrEnum):
    NORMAL = "normal"  # send now
    DELAY = "delay"  # wait delay_ms, then send
    DUPLICATE = "duplicate"  # deliver the same event twice, side by side
    DROP = "drop"  # never send: the notification is lost


class Notifier:
    def __init__(
        self,
        client: httpx.AsyncClient,
        secret: bytes,
        *,
        retry_base_ms: int,
        max_attempts: int,
        record: RecordAttempt,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._secret = secret
        self._retry_base_s = retry_base_ms / 1000
        self._max_attempts = max_attempts
        self._record = record
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def send(
        self,
        url: str,
        event: AnyEvent,
        mode: DeliveryMode = DeliveryMode.NORMAL,
        delay_ms: int = 0,
    ) -> None:
        """Schedule delivery of `event` to `url` and return at once."""
        if mode is DeliveryMode.DROP:
            return
        delay_s = delay_ms / 1000 if mode is DeliveryMode.DELAY else 0.0
        copies = 2 if mode is DeliveryMode.DUPLICATE else 1
        for _ in range(copies):
            task = asyncio.create_task(
                self._deliver(url, event, delay_s), name=f"notify-{event.id}"
            )
            self._tasks.add(task)
            task.add_done_callback(self._forget)

    async def aclose(self) -> None:
        """Cancel deliveries still in flight (on shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(self, url: str, event: AnyEvent, delay_s: float) -> None:
        if delay_s:
            await asyncio.sleep(delay_s)
        body = event.model_dump_json().encode()
        for attempt in range(1, self._max_attempts + 1):
            if await self._attempt(url, event, body, attempt):
                return
            if attempt < self._max_attempts:
                await asyncio.sleep(self._retry_base_s * 2 ** (attempt - 1))
        log.warning("gave up on event %s after %d attempts", event.id, self._max_attempts)

    async def _attempt(self, url: str, event: AnyEvent, body: bytes, attempt: int) -> bool:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body, int(self._clock())),
        }
        status_code: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(url, content=body, headers=headers)
            status_code = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        await self._record(
            _delivery_key(event),
            DeliveryAttempt(
                event_id=event.id,
                type=event.type,
                attempt=attempt,
                status_code=status_code,
                error=error,
            ),
        )
        return status_code is not None and 200 <= status_code < 300

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("notification task failed", exc_info=task.exception())


def _delivery_key(event: AnyEvent) -> str:
    return event.data.payout_id if isinstance(event, PayoutEvent) else event.data.out_trade_no
