"""Requests waiting for their order's status to change, served by one read an interval.

A buyer's page, or a shop's server, that wants to know when an order is paid asks
`GET /v1/orders/{id}/status-change?from=awaiting_payment` and is answered once the
status is another, or when its timeout ends. One poller serves every waiting request of
this process: each interval it reads the statuses of all the orders waited on in one
query by primary key, and wakes the requests whose order moved. So a hundred waiting
pages cost one small read an interval, where a hundred pages polling the order cost a
hundred requests, each with its credential check, session and view.

Why an interval: the worker writes the status, in another process; PostgreSQL could
tell us (LISTEN), SQLite cannot, and one mechanism serves both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select

from db.engine import SessionFactory
from db.tables import Order

log = logging.getLogger(__name__)

ReadStatuses = Callable[[Sequence[str]], Mapping[str, str]]

_TABLE = Order.__table__  # type: ignore[attr-defined]
# Built once: SQLAlchemy keys its compiled-statement cache on the statement object.
_STATES = select(_TABLE.c.id, _TABLE.c.status, _TABLE.c.updated_at).where(
    _TABLE.c.id.in_(bindparam("ids", expanding=True))
)
CHUNK = 500  # ids per IN (...): well under every backend's limit of parameters


def chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def order_version(status: str, updated_at: datetime) -> str:
    """What the checkout's watch compares: the order's status and when it last changed.
    A method chosen or lines changed elsewhere keep the status and change the page; every
    such write sets updated_at, under the order's lock."""
    return f"{status}@{updated_at.isoformat()}"


def _status(status: str, _updated_at: datetime) -> str:
    return status


def _states_from(reads: SessionFactory, state: Callable[[str, datetime], str]) -> ReadStatuses:
    """A watch's read: each order's `state` (of its status and last change), by id, in
    one session."""

    def read(ids: Sequence[str]) -> dict[str, str]:
        with reads() as session:
            return {
                order_id: state(status, updated_at)
                for part in chunks(ids)
                for order_id, status, updated_at in session.execute(_STATES, {"ids": list(part)})
            }

    return read


def statuses_from(reads: SessionFactory) -> ReadStatuses:
    """The status-change watch's read: each order's status."""
    return _states_from(reads, _status)


def versions_from(reads: SessionFactory) -> ReadStatuses:
    """The checkout watch's read: each order's `order_version`."""
    return _states_from(reads, order_version)


class WatchFull(Exception):
    """As many requests wait as this process lets wait (`order_wait_capacity`)."""


class CallerWaitsFull(Exception):
    """As many of one caller's requests wait as one caller may hold (`order_wait_per_caller`)."""


@dataclass
class _Waiter:
    unchanged: str  # the state (status, or version) whose end the request waits for
    moved: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class StatusWatch:
    """Wakes each waiting request when its order's state (as its read gives it: the
    status, or the checkout's version) is no longer the one it named."""

    def __init__(
        self, read: ReadStatuses, interval_s: float, capacity: int, per_caller: int
    ) -> None:
        self._read = read  # runs in a thread: a synchronous session
        self._interval_s = interval_s
        self._capacity = capacity
        self._per_caller = per_caller
        self._by_caller: dict[str, int] = {}  # waiting requests of each caller that has any
        self._waiters: dict[str, list[_Waiter]] = {}
        # Counted, not summed over _waiters: /metrics reads it from its thread while the
        # event loop changes _waiters, and iterating them there raised "dictionary changed
        # size during iteration". One int read is atomic.
        self._waiting = 0
        self._poller: asyncio.Task[None] | None = None
        self._failing = False  # the last read failed: told once, not every interval

    @property
    def waiting(self) -> int:
        return self._waiting

    async def wait(self, order_id: str, unchanged: str, timeout_s: float, caller: str) -> bool:
        """Whether the order's state moved from `unchanged` within `timeout_s`; `caller`
        names who waits, for its share of the capacity."""
        if self.waiting >= self._capacity:
            raise WatchFull
        held = self._by_caller.get(caller, 0)
        if held >= self._per_caller:
            raise CallerWaitsFull
        self._by_caller[caller] = held + 1
        waiter = _Waiter(unchanged)
        self._waiters.setdefault(order_id, []).append(waiter)
        self._waiting += 1
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="order-status-watch")
        try:
            done, _ = await asyncio.wait({waiter.moved}, timeout=timeout_s)
            return bool(done)
        finally:
            self._forget(order_id, waiter)
            self._release(caller)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)

    def _forget(self, order_id: str, waiter: _Waiter) -> None:
        waiters = self._waiters[order_id]
        waiters.remove(waiter)
        self._waiting -= 1
        if not waiters:
            del self._waiters[order_id]

    def _release(self, caller: str) -> None:
        left = self._by_caller[caller] - 1
        if left:
            self._by_caller[caller] = left
        else:
            del self._by_caller[caller]  # callers come and go: none kept once idle

    async def _poll(self) -> None:
        try:
            while self._waiters:
                await asyncio.sleep(self._interval_s)
                await self._wake_moved()
        finally:
            # No await between the loop's last look and this: a request that comes
            # after it finds no poller and starts one.
            self._poller = None

    async def _wake_moved(self) -> None:
        ids = list(self._waiters)
        if not ids:
            return
        try:
            statuses = await asyncio.to_thread(self._read, ids)
        except Exception as error:  # the database away: the requests wait on to their timeout
            if not self._failing:
                log.warning(
                    "order status watch: read failed; requests wait on until it reads again",
                    extra={"error_type": type(error).__name__, "waiting": self.waiting},
                )
            self._failing = True
            return
        if self._failing:
            log.info("order status watch: reading again", extra={"waiting": self.waiting})
            self._failing = False
        for order_id, status in statuses.items():
            for waiter in self._waiters.get(order_id, ()):
                if status != waiter.unchanged and not waiter.moved.done():
                    waiter.moved.set_result(None)
