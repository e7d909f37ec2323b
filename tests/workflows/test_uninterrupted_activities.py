"""A synchronous activity whose attempt timed out runs to its end: the worker cancels it
some seconds later (its own timer), and the SDK would raise CancelledError into its thread
wherever it is, such as inside SQLAlchemy's pool with its lock taken. The worker's
interceptor (activities/uninterrupted.py) leaves the SDK no thread to raise into. One
cancelled while it waited for a thread (the worker's only one, busy) never begins.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.uninterrupted import UninterruptedSyncActivities
from tests.conftest import System

WAITS_FOR_CANCEL = 30.0  # seconds: the worker's cancel comes about 5 s after the timeout
WORKS_ON = 0.5  # seconds of work after the cancel, where the SDK's exception would land


class Step:
    """A synchronous step that works until its attempt is cancelled, then a little more."""

    def __init__(self) -> None:
        self.saw_cancel = False
        self.ended = False  # its last line ran
        self.interrupted: BaseException | None = None
        self.settled = threading.Event()  # ended or interrupted

    @activity.defn(name="step_past_its_timeout")
    def run(self) -> None:
        try:
            self._work_until(time.monotonic() + WAITS_FOR_CANCEL, activity.is_cancelled)
            self.saw_cancel = activity.is_cancelled()
            self._work_until(time.monotonic() + WORKS_ON, lambda: False)
        except BaseException as error:
            self.interrupted = error
            raise
        finally:
            self.settled.set()
        self.ended = True

    @staticmethod
    def _work_until(deadline: float, stop: object) -> None:
        while time.monotonic() < deadline and not (callable(stop) and stop()):
            time.sleep(0.01)  # the step's own work, a slice at a time


class Queued:
    """A synchronous step that only notes that it began."""

    def __init__(self) -> None:
        self.began = False

    @activity.defn(name="step_behind_it")
    def run(self) -> None:
        self.began = True


@workflow.defn(sandboxed=False)
class TwoTimedOutSteps:
    """Both steps at once, each with an attempt of half a second and no retry."""

    @workflow.run
    async def run(self) -> list[str]:
        return list(
            await asyncio.gather(self._step("step_past_its_timeout"), self._step("step_behind_it"))
        )

    async def _step(self, name: str) -> str:
        try:
            await workflow.execute_activity(
                name,
                start_to_close_timeout=timedelta(milliseconds=500),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError:
            return "timed out"
        return "finished"


async def test_a_timed_out_sync_step_of_the_worker_runs_to_its_end(system: System) -> None:
    client = await Client.connect(system.temporal_address)
    step, queued, queue = Step(), Queued(), f"uninterrupted-{secrets.token_hex(4)}"
    with ThreadPoolExecutor(max_workers=1) as executor:  # the second step waits for it
        async with Worker(
            client,
            task_queue=queue,
            workflows=[TwoTimedOutSteps],
            activities=[step.run, queued.run],
            activity_executor=executor,
            workflow_runner=UnsandboxedWorkflowRunner(),
            interceptors=[UninterruptedSyncActivities()],
        ):
            outcome = await client.execute_workflow(
                TwoTimedOutSteps.run, id=queue, task_queue=queue
            )
            assert outcome == ["timed out", "timed out"]
            assert await asyncio.to_thread(step.settled.wait, WAITS_FOR_CANCEL + 5)
    # The executor's exit waited for the queued step's turn in the thread.
    assert not queued.began, "a step cancelled before it had a thread began anyway"
    assert step.interrupted is None, f"the step was interrupted: {step.interrupted!r}"
    assert step.ended
    assert step.saw_cancel, "the worker never cancelled the attempt: nothing was shown"
