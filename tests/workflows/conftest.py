"""Fixtures of the workflow tests: workers of a test's own that hold an order's closing write
(tests/workflows/test_ending_told_stands.py and its recorded history)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from domain.saga import StatusChange
from settings import Settings
from tests.conftest import System
from tests.pausable_link import PausableLink
from tests.support import settings_from_env
from worker import built_worker


@dataclass
class HeldClosing(Interceptor):
    """Holds the first `set_order_status` to closed until released: once it committed, or
    (`before`) before it runs. `ran` is that write's outcome (its error, or None)."""

    before: bool = False
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    ran: asyncio.Future[BaseException | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Hold(next, self)

    async def hold(self) -> None:
        self.holding.set()
        await self.release.wait()


class _Hold(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, held: HeldClosing) -> None:
        super().__init__(next)
        self._held = held

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if not self._first_closing(input):
            return await self.next.execute_activity(input)
        if self._held.before:
            await self._held.hold()
        try:
            result = await self.next.execute_activity(input)
        except Exception as error:
            self._held.ran.set_result(error)
            raise
        self._held.ran.set_result(None)
        if not self._held.before:
            await self._held.hold()
        return result

    def _first_closing(self, input: ExecuteActivityInput) -> bool:
        if activity.info().activity_type != "set_order_status" or self._held.holding.is_set():
            return False
        change = input.args[0]
        assert isinstance(change, StatusChange)
        return change.status == "closed"


def _own_settings(system: System, queue: str, **more: object) -> Settings:
    """The system's settings for a worker of the test's own: a task queue of its own, no
    metrics port."""
    update = {"task_queue": f"{queue}-{secrets.token_hex(4)}", "worker_metrics_port": 0}
    return settings_from_env(system.env).model_copy(update={**update, **more})


@dataclass
class OwnWorker:
    client: Client
    settings: Settings
    held: HeldClosing


@pytest_asyncio.fixture
async def own_worker(system: System) -> AsyncIterator[OwnWorker]:
    settings = _own_settings(system, "ending")
    held = HeldClosing()
    async with built_worker(settings, interceptors=[held]) as parts, parts.worker:
        try:
            yield OwnWorker(parts.client, settings, held)
        finally:
            held.release.set()  # a test that failed midway leaves nothing held


@dataclass
class CutOffWorker:
    """A worker of the test's own that reaches Temporal through a link the test can pause;
    it holds its first closing write before the write runs."""

    settings: Settings
    held: HeldClosing
    link: PausableLink


@pytest_asyncio.fixture
async def cut_off_worker(system: System) -> AsyncIterator[CutOffWorker]:
    # Its stale write retries until it is stopped: no wait for it at shutdown.
    settings = _own_settings(system, "cut-off", worker_shutdown_seconds=0)
    held = HeldClosing(before=True)
    async with PausableLink(settings.temporal_address) as link:
        linked = settings.model_copy(update={"temporal_address": link.address})
        async with built_worker(linked, interceptors=[held]) as parts, parts.worker:
            try:
                yield CutOffWorker(settings, held, link)
            finally:
                held.release.set()
                link.resume()
