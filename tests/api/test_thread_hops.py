"""A request hops into the thread pool only where it does blocking work. FastAPI runs a
plain `def` dependency in its pool, and checks the model a plain `def` route returns in
another hop: each hop costs the running API about 0.2 ms of CPU (README, "The API's own
cuts"), more than a credential's signature check. So every dependency is `async`, and the
reads a buyer's page polls are `async` routes that hop once, for their database read. The
sandbox's dependencies too: a hop each was a fifth of its CPU on a bench order."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

import stack
from api.app import create_app
from sandbox.app import create_app as create_sandbox
from sandbox.credentials import generate_credentials
from settings import Settings
from tests.support import settings_from_env

POLLED = {"/v1/orders/{order_id}", "/v1/orders/{order_id}/payments"}


def _routes(create: Callable[[Settings], FastAPI] = create_app) -> list[tuple[str, APIRoute]]:
    env = {**generate_credentials(), **stack.generate_platform_secrets()}
    app = create(settings_from_env({**env, "PAYSAGA_DATABASE_URL": "sqlite://"}))
    found = []
    for context in iter_route_contexts(app.routes):  # included routers flattened
        if isinstance(context.original_route, APIRoute):
            found.append((str(context.path), context.original_route))
    return found


def _async(call: object) -> bool:
    method = getattr(call, "__call__", None)  # noqa: B004 (an instance, as Access is)
    return any(
        inspect.iscoroutinefunction(each) or inspect.isasyncgenfunction(each)
        for each in (call, method)
    )


@pytest.mark.parametrize("create", [create_app, create_sandbox], ids=["api", "sandbox"])
def test_no_dependency_of_any_route_runs_in_the_thread_pool(
    create: Callable[[Settings], FastAPI],
) -> None:
    plain = set()
    for path, route in _routes(create):
        pending = list(route.dependant.dependencies)
        while pending:
            dependant = pending.pop()
            pending.extend(dependant.dependencies)
            if dependant.call is not None and not _async(dependant.call):
                plain.add(f"{path}: {getattr(dependant.call, '__qualname__', dependant.call)}")
    assert not plain, sorted(plain)


def test_the_polled_reads_are_async_routes() -> None:
    polled = {path: route for path, route in _routes() if path in POLLED}
    assert set(polled) == POLLED
    assert all(inspect.iscoroutinefunction(route.endpoint) for route in polled.values())
