"""Fixtures of the workflow tests: a worker of a test's own that holds an order's closing write
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
from tests.support import settings_from_env
from worker import built_worker


@dataclass
class HeldClosing(Interceptor):
    """Holds the first `set_order_status` to closed, once it committed, until released."""

    written: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Hold(next, self)


class _Hold(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, held: HeldClosing) -> None:
        super().__init__(next)
        self._held = held

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await self.next.execute_activity(input)
        if activity.info().activity_type == "set_order_status" and not self._held.written.is_set():
            change = input.args[0]
            assert isinstance(change, StatusChange)
            if change.status == "closed":
                self._held.written.set()
                await self._held.release.wait()
        return result


@dataclass
class OwnWorker:
    client: Client
    settings: Settings
    held: HeldClosing


@pytest_asyncio.fixture
async def own_worker(system: System) -> AsyncIterator[OwnWorker]:
    settings = settings_from_env(system.env).model_copy(
        update={"task_queue": f"ending-{secrets.token_hex(4)}", "worker_metrics_port": 0}
    )
    held = HeldClosing()
    async with built_worker(settings, interceptors=[held]) as parts, parts.worker:
        try:
            yield OwnWorker(parts.client, settings, held)
        finally:
            held.release.set()  # a test that failed midway leaves nothing held
