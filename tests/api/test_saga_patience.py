"""The API waits for a saga as long as a worker restart takes, and for a checkout no
longer than its deadline; past them it answers 503 with Retry-After, and a retry of the
same request gets the answer.

A second API runs in this process over the system's database, Temporal and worker,
with the patience or the checkout deadline a test needs (tests/api/test_order_timings.py).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest_asyncio
from asgi_lifespan import LifespanManager
from sqlmodel import Session, col, select

from api.app import create_app
from db.tables import IdempotencyKey
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    order_body,
    pay,
    settings_from_env,
    wait_for,
    wait_status,
)

ApiWith = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest_asyncio.fixture
async def api_with(system: System) -> ApiWith:
    """An in-process API as an operator, with `settings` (PAYSAGA_ names) over the system's."""

    @asynccontextmanager
    async def running(**settings: str) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings_from_env({**system.env, **settings}))
        headers = {"Authorization": f"Bearer {system.operator_token()}"}
        async with (
            LifespanManager(app) as started,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=started.app),
                base_url="http://api.test",
                headers=headers,
                timeout=10,
            ) as client,
        ):
            yield client

    return running


async def test_receipt_confirmed_while_the_worker_is_down_completes_once_it_is_back(
    system: System, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, api_with: ApiWith
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, auto_complete_seconds=3600)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "awaiting_receipt")
    confirm = f"/v1/orders/{order['id']}/confirm-receipt"

    await asyncio.to_thread(system.processes.stop, "worker", kill=True)
    try:
        async with api_with(PAYSAGA_API_UPDATE_PATIENCE_SECONDS="0.5") as impatient:
            # In process, httpx's timeout does not apply: the test bounds the wait itself.
            refused = await asyncio.wait_for(impatient.post(confirm), timeout=10)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "temporal_unavailable"
        assert int(refused.headers["Retry-After"]) >= 1
        # The system's API is patient (30 s by default): the buyer's request waits.
        confirmation = asyncio.create_task(api.post(confirm))
    finally:
        await asyncio.to_thread(system.restart_worker, kill=True)

    response = await confirmation
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"


async def test_checkout_while_the_channel_is_down_answers_503_then_the_same_order(
    system: System, api: httpx.AsyncClient, api_with: ApiWith
) -> None:
    merchant_id = await create_merchant(api)
    body = order_body(merchant_id, channel="wechatpay")
    key = {"Idempotency-Key": f"down-{secrets.token_hex(6)}"}
    async with api_with(PAYSAGA_CHECKOUT_DEADLINE_SECONDS="1") as quick:
        await asyncio.to_thread(system.processes.stop, "sandbox")
        try:
            started = time.monotonic()
            posted = quick.post("/v1/orders", json=body, headers=key)
            unavailable = await asyncio.wait_for(posted, timeout=10)
            waited = time.monotonic() - started
        finally:
            await asyncio.to_thread(system.restart_sandbox)
        assert unavailable.status_code == 503, unavailable.text
        assert unavailable.json()["error"]["code"] == "channel_unavailable"
        assert int(unavailable.headers["Retry-After"]) >= 1
        assert waited < 5  # the deadline, not the payment window

        # The channel is back: the client retries with the same key, as told.
        created = await wait_for(
            lambda: quick.post("/v1/orders", json=body, headers=key),
            lambda response: response.status_code != 503,
            "the retried order to get its checkout",
        )
    assert created.status_code == 201, created.text
    order = created.json()
    with Session(system.engine) as session:
        held = select(IdempotencyKey.order_id).where(
            col(IdempotencyKey.key).endswith(f":{key['Idempotency-Key']}")
        )
        assert session.exec(held).all() == [order["id"]]  # one order, the first one
    assert order["status"] == "awaiting_payment"
    assert order["payment"]["checkout_url"]
    assert (await api.post(f"/v1/orders/{order['id']}/cancel")).status_code == 200
