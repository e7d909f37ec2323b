"""The bare floor: a Temporal saga of paysaga's shape with no I/O, on its own worker.

Four local activities (record, create payment, record payment, release), a signal
awaited after "payment", about 13 history events; the worker runs with the SDK's
defaults, as paysaga's does (the sandboxed workflow runner, a thread pool for the
synchronous activities). `python -m bench.floor ADDRESS QUEUE` runs the worker.
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

STEP = timedelta(seconds=10)


@activity.defn
def floor_step(name: str) -> str:
    return name


@workflow.defn
class FloorSaga:
    def __init__(self) -> None:
        self._paid = False

    @workflow.run
    async def run(self, order_id: str) -> str:
        await workflow.execute_local_activity(floor_step, "record", start_to_close_timeout=STEP)
        await workflow.execute_local_activity(floor_step, "payment", start_to_close_timeout=STEP)
        await workflow.wait_condition(lambda: self._paid)
        await workflow.execute_local_activity(floor_step, "paid", start_to_close_timeout=STEP)
        await workflow.execute_local_activity(floor_step, "release", start_to_close_timeout=STEP)
        return order_id

    @workflow.signal
    def paid(self) -> None:
        self._paid = True


async def run_worker(address: str, queue: str) -> None:
    client = await Client.connect(address)
    with ThreadPoolExecutor(max_workers=32) as executor:
        worker = Worker(
            client,
            task_queue=queue,
            workflows=[FloorSaga],
            activities=[floor_step],
            activity_executor=executor,
        )
        await worker.run()


async def one_saga(client: Client, queue: str, order_id: str) -> None:
    """Start, signal "paid" (buffered if the saga is not yet waiting), await the end."""
    handle = await client.start_workflow(
        FloorSaga.run, order_id, id=f"floor-{order_id}", task_queue=queue
    )
    await handle.signal(FloorSaga.paid)
    await handle.result()


if __name__ == "__main__":
    asyncio.run(run_worker(sys.argv[1], sys.argv[2]))
