"""api.order_watch.StatusWatch on its own: one read an interval serves every waiting
request, a full watch refuses, and a failed read leaves the requests waiting.

Its read is given statuses by the test (the read of the database is
tests/db/test_order_statuses_read.py; the whole route, tests/api/test_order_status_change.py).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable, Sequence

import pytest

from api.order_watch import CallerWaitsFull, StatusWatch, WatchFull

INTERVAL_S = 0.01
BUYER = "buyer:usr_1"


class Statuses:
    """What the database holds, as the test sets it; counts the watch's reads."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.now = statuses
        self.reads: list[list[str]] = []
        self.failing = 0  # this many reads fail first

    def read(self, ids: Sequence[str]) -> dict[str, str]:
        self.reads.append(sorted(ids))
        if self.failing:
            self.failing -= 1
            raise ConnectionError("database away")
        return {order_id: self.now[order_id] for order_id in ids if order_id in self.now}


async def _until(condition: Callable[[], object]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(INTERVAL_S)  # the poll interval, not a wait for the state


async def test_one_read_serves_every_waiting_request() -> None:
    db = Statuses({f"ord_{n}": "awaiting_payment" for n in range(20)})
    watch = StatusWatch(db.read, INTERVAL_S, capacity=100, per_caller=100)
    waits = [
        asyncio.create_task(watch.wait(f"ord_{n}", "awaiting_payment", timeout_s=5, caller=BUYER))
        for n in range(20)
    ]
    await _until(lambda: watch.waiting == 20 and db.reads)
    reads_while_waiting = len(db.reads)

    for n in range(0, 20, 2):  # half of the orders are paid
        db.now[f"ord_{n}"] = "paid"
    await _until(lambda: sum(w.done() for w in waits) == 10)
    assert [w.result() for w in waits if w.done()] == [True] * 10
    assert all(waits[n].done() == (n % 2 == 0) for n in range(20))

    # Each read asked for every order waited on at once: one query, not one per request.
    assert all(len(ids) in (10, 20) for ids in db.reads[reads_while_waiting - 1 :])
    for n in range(1, 20, 2):
        db.now[f"ord_{n}"] = "closed"
    assert await asyncio.gather(*waits) == [True] * 20
    assert watch.waiting == 0
    await watch.close()


async def test_a_request_whose_order_does_not_move_gets_false_when_its_time_ends() -> None:
    db = Statuses({"ord_1": "awaiting_payment"})
    watch = StatusWatch(db.read, INTERVAL_S, capacity=10, per_caller=10)
    assert await watch.wait("ord_1", "awaiting_payment", timeout_s=0.1, caller=BUYER) is False
    assert db.reads  # it was looked at, and found unchanged
    assert watch.waiting == 0
    await watch.close()


async def test_a_full_watch_refuses_and_counts_only_what_waits() -> None:
    db = Statuses({"ord_1": "awaiting_payment", "ord_2": "awaiting_payment"})
    watch = StatusWatch(db.read, INTERVAL_S, capacity=1, per_caller=1)
    first = asyncio.create_task(watch.wait("ord_1", "awaiting_payment", timeout_s=5, caller=BUYER))
    await _until(lambda: watch.waiting == 1)
    with pytest.raises(WatchFull):
        await watch.wait("ord_2", "awaiting_payment", timeout_s=5, caller=BUYER)
    db.now["ord_1"] = "paid"
    assert await first is True
    # Room again: the next request waits.
    db.now["ord_2"] = "paid"
    assert await watch.wait("ord_2", "awaiting_payment", timeout_s=5, caller=BUYER) is True
    await watch.close()


async def test_failed_reads_leave_the_requests_waiting_until_one_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = Statuses({"ord_1": "paid"})
    db.failing = 3
    watch = StatusWatch(db.read, INTERVAL_S, capacity=10, per_caller=10)
    with caplog.at_level(logging.INFO, logger="api.order_watch"):
        assert await watch.wait("ord_1", "awaiting_payment", timeout_s=5, caller=BUYER) is True
    assert len(db.reads) >= 4  # three failed, then the one that woke it
    # Told once when the reads fail and once when they read again, not every interval.
    assert [record.levelname for record in caplog.records] == ["WARNING", "INFO"]
    await watch.close()


async def test_two_requests_on_one_order_each_wait_for_their_own_status() -> None:
    db = Statuses({"ord_1": "paid"})
    watch = StatusWatch(db.read, INTERVAL_S, capacity=10, per_caller=10)
    # One page still thinks the order unpaid, another has seen it paid: only the first moves.
    unpaid = asyncio.create_task(watch.wait("ord_1", "awaiting_payment", timeout_s=5, caller=BUYER))
    paid = asyncio.create_task(watch.wait("ord_1", "paid", timeout_s=5, caller=BUYER))
    assert await unpaid is True
    assert not paid.done()
    db.now["ord_1"] = "completed"
    assert await paid is True
    await watch.close()


async def test_the_count_of_waiting_requests_is_read_safely_from_another_thread() -> None:
    """/metrics is a plain function (a thread) and its gauge asks `waiting` while the event
    loop adds and forgets waiters: the count must never iterate what the loop changes."""
    watch = StatusWatch(Statuses({}).read, interval_s=60, capacity=100_000, per_caller=100_000)
    errors: list[BaseException] = []
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            try:
                assert watch.waiting >= 0
            except BaseException as error:  # the test reports whatever it was
                errors.append(error)
                return

    scraper = threading.Thread(target=scrape)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: the race shows within a few rounds
    scraper.start()
    try:
        for round_ in range(50):
            waits = [
                asyncio.create_task(watch.wait(f"ord_{round_}_{n}", "awaiting_payment", 60, BUYER))
                for n in range(200)
            ]
            await _until(lambda: watch.waiting == 200)
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
            assert watch.waiting == 0
            if errors:
                break
    finally:
        stop.set()
        scraper.join()
        sys.setswitchinterval(switch)
        await watch.close()
    assert errors == []


async def test_one_caller_holds_no_more_than_its_share_of_the_waiting() -> None:
    db = Statuses({"ord_1": "awaiting_payment", "ord_2": "awaiting_payment"})
    watch = StatusWatch(db.read, INTERVAL_S, capacity=10, per_caller=2)
    held = [
        asyncio.create_task(watch.wait("ord_1", "awaiting_payment", 5, BUYER)) for _ in range(2)
    ]
    await _until(lambda: watch.waiting == 2)
    with pytest.raises(CallerWaitsFull):
        await watch.wait("ord_2", "awaiting_payment", 5, BUYER)
    other = asyncio.create_task(watch.wait("ord_2", "awaiting_payment", 5, "merchant:mer_1"))
    await _until(lambda: watch.waiting == 3)  # another caller still waits

    db.now["ord_1"] = "paid"
    assert await asyncio.gather(*held) == [True, True]
    db.now["ord_2"] = "paid"  # the buyer's share is free again
    assert await watch.wait("ord_2", "paid", 0.05, BUYER) is False
    assert await other is True
    assert watch.waiting == 0
