"""Delivering notifications with retries, each channel on its own schedule and wire format.

A channel's `NotifyProtocol` says how one of our events goes on the wire (body
and headers, signed afresh on every attempt), what answer counts as taken
(Alipay: exactly `success`; WeChat Pay: 200 or 204; the card gateway and the
bank: any 2xx) and how long to wait before each retry, in the channel's own
seconds. The notifier waits `time_scale` of each delay, so tests can run a
day-long schedule in a second; every attempt is recorded with the planned
delay and the channel-time at which it was made.

Each event gets its own asyncio task, kept so that shutdown can cancel it.
Attempts are recorded under the key the control API reads them by: a payment
or refund event's out_trade_no, a payout event's payout_id. An event is decided
first (`owe`: its faults drawn), held by the store with the change it tells of, in
one journal write (a crash keeps both or neither), and only then sent (`start`); the
`Outbox` (the store) releases it once it is taken or given up on, and `resume` sends
what a restart found still held, as a real channel keeps retrying through its own outage.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from sandbox.notices import HeldNotice, Owed
from sandbox.protocol import Event, PayoutEvent
from sandbox.store import DeliveryAttempt

log = logging.getLogger(__name__)

RecordAttempt = Callable[[str, DeliveryAttempt], Awaitable[None]]
AnyEvent = Event | PayoutEvent


class DeliveryMode(enum.StrEnum):
    NORMAL = "normal"  # send now
    DELAY = "delay"  # wait delay_ms, then send
    DUPLICATE = "duplicate"  # deliver the same event twice, side by side
    DROP = "drop"  # never send: the notification is lost


@dataclass(frozen=True)
class WireMessage:
    body: bytes
    headers: Mapping[str, str]


class NotifyProtocol(Protocol):
    """One channel's notifications: wire format, acknowledgement, retry schedule."""

    name: str  # how a held notice names it across a restart (a channel's, or "bank")

    # Seconds (channel time) to wait before the 2nd, 3rd, ... attempt.
    retry_delays: tuple[float, ...]
    # Which of our event types the channel tells about at all (WeChat Pay sends
    # nothing when a buyer's payment fails: the merchant finds out by querying).
    event_types: frozenset[str]

    def render(self, event: AnyEvent) -> WireMessage: ...

    def accepted(self, status_code: int, body: bytes) -> bool: ...


class Outbox(Protocol):
    """Where notifications not yet taken are kept across a restart (the store)."""

    def release_notice(self, event_id: str) -> None: ...


def doubling_delays(first_s: float, retries: int) -> tuple[float, ...]:
    return tuple(first_s * 2**n for n in range(retries))


class Notifier:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        time_scale: float,
        record: RecordAttempt,
        clock: Callable[[], float] = time.monotonic,
        faults: Callable[[DeliveryMode, int], tuple[DeliveryMode, int]] | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self._client = client
        self._outbox = outbox
        self._faults = faults  # a chaos run's: may turn a normal delivery into a fault
        self._time_scale = time_scale
        self._record = record
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def owe(
        self,
        url: str,
        event: AnyEvent,
        protocol: NotifyProtocol,
        mode: DeliveryMode = DeliveryMode.NORMAL,
        delay_ms: int = 0,
    ) -> Owed | None:
        """What sending `event` to `url` owes, its faults drawn now; None when nothing will
        be sent (dropped, or a type the channel does not tell of). Nothing is sent yet."""
        if self._faults is not None:
            mode, delay_ms = self._faults(mode, delay_ms)
        if mode is DeliveryMode.DROP or event.type not in protocol.event_types:
            return None
        delay_s = delay_ms / 1000 if mode is DeliveryMode.DELAY else 0.0
        copies = 2 if mode is DeliveryMode.DUPLICATE else 1
        return Owed(url, event, protocol.name, delay_s, copies)

    def start(self, owed: Owed | None, protocol: NotifyProtocol) -> None:
        """Send what a change owed, once the store holds it (written with the change),
        and return at once."""
        if owed is None:
            return
        for _ in range(owed.copies):
            self._start(owed.url, owed.event, protocol, owed.delay_s)

    def resume(self, held: list[HeldNotice], protocols: Mapping[str, NotifyProtocol]) -> None:
        """Send again, at once, each notification a restart found still owed (no faults:
        whether it is sent was decided when it was first handed over)."""
        for notice in held:
            raw = notice.event
            payout = raw["type"].startswith("payout.")
            event = PayoutEvent.model_validate(raw) if payout else Event.model_validate(raw)
            self._start(notice.url, event, protocols[notice.protocol], 0.0)

    def _start(self, url: str, event: AnyEvent, protocol: NotifyProtocol, delay_s: float) -> None:
        task = asyncio.create_task(
            self._deliver(url, event, protocol, delay_s), name=f"notify-{event.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    async def aclose(self) -> None:
        """Cancel deliveries still in flight (on shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(
        self, url: str, event: AnyEvent, protocol: NotifyProtocol, delay_s: float
    ) -> None:
        if delay_s:
            await asyncio.sleep(delay_s)
        started = self._clock()
        waits = (0.0, *protocol.retry_delays)
        for attempt, wait_s in enumerate(waits, start=1):
            await asyncio.sleep(wait_s * self._time_scale)
            channel_time_s = (self._clock() - started) / self._time_scale
            if await self._attempt(url, event, protocol, attempt, wait_s, channel_time_s):
                return  # released by the attempt, as it was taken
        log.warning("gave up on event %s after %d attempts", event.id, len(waits))
        self._release(event)

    def _release(self, event: AnyEvent) -> None:
        if self._outbox is not None:
            self._outbox.release_notice(event.id)

    async def _attempt(
        self,
        url: str,
        event: AnyEvent,
        protocol: NotifyProtocol,
        attempt: int,
        wait_s: float,
        channel_time_s: float,
    ) -> bool:
        message = protocol.render(event)
        status_code: int | None = None
        error: str | None = None
        accepted = False
        try:
            response = await self._client.post(url, content=message.body, headers=message.headers)
            status_code = response.status_code
            accepted = protocol.accepted(status_code, response.content)
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if accepted:  # before anything awaits: a shutdown cancelling it then must not leave
            self._release(event)  # a notice taken owed, to be sent again after the restart
        await self._record(
            _delivery_key(event),
            DeliveryAttempt(
                event_id=event.id,
                type=event.type,
                attempt=attempt,
                status_code=status_code,
                error=error,
                accepted=accepted,
                waited_s=wait_s,
                at_s=round(channel_time_s, 3),
            ),
        )
        return accepted

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("notification task failed", exc_info=task.exception())


def _delivery_key(event: AnyEvent) -> str:
    return event.data.payout_id if isinstance(event, PayoutEvent) else event.data.out_trade_no
