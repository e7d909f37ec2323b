"""The bare floor: a Temporal saga of paysaga's shape with no I/O, on its own worker.

Four local activities (record, create payment, record payment, release), a signal
awaited after "payment", 13 history events in two workflow tasks; the worker runs as
paysaga's does (workflows without the SDK's sandbox, a thread pool for the synchronous
activities). `python -m bench.floor ADDRESS QUEUE CHECKOUT_PORT` runs the
worker.

The bench's buyer signals "paid" once the saga's first workflow task (through its
"payment" step) is done at the server, as a buyer pays once our API has answered with the
checkout, which the update it waits on sends when that task is done: the worker then
sends the saga's id in a datagram to CHECKOUT_PORT on 127.0.0.1, where the bench listens
(`Checkouts`). A signal sent at once instead (as this floor did before) often reached the
server before the saga's first workflow task, which then ran the whole saga: 10 events
in one task, a cheaper shape than any order's. One sent from the "payment" step itself
mostly reached the server while that task was still running: the server then handed the
second task back with the first's completion, not through matching, cheaper again.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

STEP = timedelta(seconds=10)
CHECKOUT_WAIT_S = 30.0  # past it (a datagram lost), the buyer signals anyway
# The sagas whose payment step has run and whose first task is not yet done, by run id.
_paid_step_ran: dict[str, str] = {}
_paid_step_lock = threading.Lock()  # the steps run in the executor's threads
# Where the payment step itself tells the bench, on an SDK whose core cannot be wrapped.
_told_by_step: tuple[socket.socket, tuple[str, int]] | None = None


@activity.defn
def floor_step(name: str, order_id: str) -> str:
    run_id = activity.info().workflow_run_id
    if name == "payment" and _told_by_step is not None:
        sender, to = _told_by_step
        sender.sendto(order_id.encode(), to)
    elif name == "payment" and run_id is not None:
        with _paid_step_lock:
            _paid_step_ran[run_id] = order_id
    return name


class _TellingBridge:
    """The SDK's core worker, but once a completion that ends a saga's first task (the
    first after its payment step ran that schedules no step) is taken by the server (the
    core answers it after the server's reply), the bench hears of it by datagram."""

    def __init__(self, core: Any, sender: socket.socket, to: tuple[str, int]) -> None:
        self._core, self._sender, self._to = core, sender, to

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    async def complete_workflow_activation(self, completion: WorkflowActivationCompletion) -> None:
        await self._core.complete_workflow_activation(completion)
        commands = completion.successful.commands if completion.HasField("successful") else []
        if any(command.HasField("schedule_local_activity") for command in commands):
            return  # e.g. the one scheduling the payment step, if the step ran before it
        with _paid_step_lock:
            order_id = _paid_step_ran.pop(completion.run_id, None)
        if order_id is not None:
            self._sender.sendto(order_id.encode(), self._to)


@workflow.defn
class FloorSaga:
    def __init__(self) -> None:
        self._paid = False

    @workflow.run
    async def run(self, order_id: str) -> str:
        for name in ("record", "payment"):
            await workflow.execute_local_activity(
                floor_step, args=[name, order_id], start_to_close_timeout=STEP
            )
        await workflow.wait_condition(lambda: self._paid)
        for name in ("paid", "release"):
            await workflow.execute_local_activity(
                floor_step, args=[name, order_id], start_to_close_timeout=STEP
            )
        return order_id

    @workflow.signal
    def paid(self) -> None:
        self._paid = True


def floor_worker(
    client: Client, queue: str, checkout_port: int, executor: ThreadPoolExecutor
) -> Worker:
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[FloorSaga],
        activities=[floor_step],
        activity_executor=executor,
        workflow_runner=UnsandboxedWorkflowRunner(),  # as worker.py runs paysaga's
    )
    global _told_by_step
    sender, to = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), ("127.0.0.1", checkout_port)
    # The SDK tells of no task done at the server: its workflow worker's core is wrapped,
    # through private attributes. An SDK without them (installs take the newest) falls back
    # to the step's own datagram, and the bench shows it: it samples when the floors'
    # signals came (`signalled_after_first_task`), as tests/test_bench.py does.
    workflows = getattr(worker, "_workflow_worker", None)
    core = getattr(workflows, "_bridge_worker", None)
    if core is None:
        _told_by_step = (sender, to)
        return worker
    workflows._bridge_worker = lambda: _TellingBridge(core(), sender, to)  # type: ignore[union-attr]
    return worker


def tells_after_first_task() -> bool:
    """Whether this process's floor worker tells of a saga once its first task is done
    (False: from its payment step, on an SDK whose core it cannot wrap)."""
    return _told_by_step is None


def signalled_after_first_task(events: Sequence[HistoryEvent]) -> bool:
    """Whether the saga's signal reached the server once its first workflow task was done,
    as an order's payment does (its buyer pays once the API answered with the checkout)."""
    kinds = [event.event_type for event in events]
    first_done = kinds.index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    signalled = kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    return events[signalled].event_time.ToDatetime() >= events[first_done].event_time.ToDatetime()


async def run_worker(address: str, queue: str, checkout_port: int) -> None:
    client = await Client.connect(address)
    with ThreadPoolExecutor(max_workers=32) as executor:
        await floor_worker(client, queue, checkout_port, executor).run()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Checkouts(asyncio.DatagramProtocol):
    """The bench's side of the floor worker's datagrams: a future per saga waited on."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self.late = 0  # sagas signalled after CHECKOUT_WAIT_S without their datagram

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        ready = self._waiting.get(data.decode(errors="replace"))
        if ready is not None and not ready.done():
            ready.set_result(None)

    def expect(self, order_id: str) -> asyncio.Future[None]:
        """A future of the saga's payment step, set before the saga starts: its datagram
        may come before the start's answer."""
        ready = self._waiting[order_id] = asyncio.get_running_loop().create_future()
        return ready

    def forget(self, order_id: str) -> None:
        self._waiting.pop(order_id, None)

    async def wait(self, ready: asyncio.Future[None]) -> None:
        try:
            await asyncio.wait_for(ready, CHECKOUT_WAIT_S)
        except TimeoutError:
            self.late += 1


async def listen_for_checkouts(port: int) -> tuple[asyncio.DatagramTransport, Checkouts]:
    loop = asyncio.get_running_loop()
    transport, checkouts = await loop.create_datagram_endpoint(
        Checkouts, local_addr=("127.0.0.1", port)
    )
    return transport, checkouts


async def one_saga(client: Client, queue: str, order_id: str, checkouts: Checkouts) -> str:
    """Start, signal "paid" once the payment step is done, await the end; the saga's id."""
    workflow_id = f"floor-{order_id}"
    ready = checkouts.expect(order_id)
    try:
        handle = await client.start_workflow(
            FloorSaga.run, order_id, id=workflow_id, task_queue=queue
        )
        await checkouts.wait(ready)
    finally:
        checkouts.forget(order_id)
    await handle.signal(FloorSaga.paid)
    await handle.result()
    return workflow_id


if __name__ == "__main__":
    asyncio.run(run_worker(sys.argv[1], sys.argv[2], int(sys.argv[3])))
