"""GET /v1/orders/{id}/status-change: a request that waits for its order to move on.

The real stack on both databases: the request waits while the order is unpaid, is
answered once the sandbox's payment has moved it, answers at once when the status is
already another, and answers the order unchanged when its timeout ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx

from tests.api.test_orders import assert_error
from tests.conftest import System
from tests.identities import client_as, merchant_with_key
from tests.support import (
    create_merchant,
    create_order,
    http_client,
    pay,
    scraped,
    settings_from_env,
    wait_for,
)

WAITERS = "paysaga_order_status_waiters"
WAITS = "paysaga_order_status_waits_total"
PATH = "/v1/orders/{}/status-change"


async def _waiting(system: System) -> float:
    return await scraped(f"{system.api_url}/metrics", WAITERS)


async def test_a_request_waits_for_the_payment_and_is_answered_when_it_lands(
    system: System, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    order = await create_order(api, await create_merchant(api), payment_timeout_seconds=120)
    assert order["status"] == "awaiting_payment"
    moved_before = await scraped(f"{system.api_url}/metrics", WAITS, outcome="moved")
    params = {"from": "awaiting_payment", "timeout_seconds": "25"}
    answer = asyncio.create_task(api.get(PATH.format(order["id"]), params=params))

    # Waiting, not answered: the API counts it among its waiting requests.
    await wait_for(lambda: _waiting(system), lambda count: count == 1, "the request to wait")
    assert not answer.done()

    await pay(sandbox, order["id"])
    response = await asyncio.wait_for(answer, timeout=25)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == order["id"]
    assert response.json()["status"] != "awaiting_payment"
    assert await _waiting(system) == 0
    moved = await scraped(f"{system.api_url}/metrics", WAITS, outcome="moved")
    assert moved == moved_before + 1


async def test_a_status_already_moved_is_answered_at_once(api: httpx.AsyncClient) -> None:
    order = await create_order(api, await create_merchant(api), payment_timeout_seconds=120)
    # 25 s asked, a status that is not the order's: no wait at all (the client's limit is
    # under the timeout, so a wait would fail the test).
    params = {"from": "paid", "timeout_seconds": "25"}
    response = await api.get(PATH.format(order["id"]), params=params, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "awaiting_payment"


async def test_the_order_unchanged_is_answered_when_the_timeout_ends(
    system: System, api: httpx.AsyncClient
) -> None:
    order = await create_order(api, await create_merchant(api), payment_timeout_seconds=120)
    unchanged_before = await scraped(f"{system.api_url}/metrics", WAITS, outcome="unchanged")
    began = time.monotonic()
    params = {"from": "awaiting_payment", "timeout_seconds": "0.5"}
    response = await api.get(PATH.format(order["id"]), params=params)
    assert time.monotonic() - began >= 0.5
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "awaiting_payment"
    unchanged = await scraped(f"{system.api_url}/metrics", WAITS, outcome="unchanged")
    assert unchanged == unchanged_before + 1


async def test_bad_parameters_are_refused(api: httpx.AsyncClient) -> None:
    order = await create_order(api, await create_merchant(api), payment_timeout_seconds=120)
    path = PATH.format(order["id"])
    refused = [
        ({}, "invalid_missing", "from"),
        ({"from": "unpaid"}, "invalid_enum", "from"),
        ({"from": "awaiting_payment", "timeout_seconds": "0"}, "invalid_greater_than", None),
        ({"from": "awaiting_payment", "timeout_seconds": "31"}, "invalid_less_than_equal", None),
    ]
    for params, code, param in refused:
        assert_error(await api.get(path, params=params), 400, code, param or "timeout_seconds")


async def test_another_merchants_order_is_not_found(system: System, api: httpx.AsyncClient) -> None:
    theirs = await create_order(api, await create_merchant(api), payment_timeout_seconds=120)
    other = await merchant_with_key(api)
    async with client_as(system, {"Authorization": f"Bearer {other.api_key}"}) as client:
        params = {"from": "awaiting_payment", "timeout_seconds": "5"}
        response = await client.get(PATH.format(theirs["id"]), params=params)
    assert_error(response, 404, "order_not_found", "id")
    assert await _waiting(system) == 0


async def test_a_request_whose_client_left_stops_waiting(
    system: System, api: httpx.AsyncClient
) -> None:
    """A page closed mid-wait: its request no longer holds a place among the waiting ones
    (of PAYSAGA_ORDER_WAIT_CAPACITY) until its timeout ends."""
    order = await create_order(api, await create_merchant(api), payment_timeout_seconds=120)
    params = {"from": "awaiting_payment", "timeout_seconds": "25"}
    async with http_client(system.api_url, headers=dict(api.headers)) as client:
        answer = asyncio.create_task(client.get(PATH.format(order["id"]), params=params))
        await wait_for(lambda: _waiting(system), lambda count: count == 1, "the request to wait")
        answer.cancel()  # the client's connection closes with it
        with contextlib.suppress(asyncio.CancelledError):
            await answer
    await wait_for(lambda: _waiting(system), lambda count: count == 0, "the wait to end", 5)
    gone = await scraped(f"{system.api_url}/metrics", WAITS, outcome="gone")
    assert gone >= 1


async def test_one_caller_waits_with_no_more_than_its_share_and_others_still_wait(
    system: System, api: httpx.AsyncClient
) -> None:
    """PAYSAGA_ORDER_WAIT_PER_CALLER (100): one caller holding that many waits is answered
    429 with Retry-After for the next; another caller still waits; the share frees as its
    waits end."""
    share = settings_from_env(system.env).order_wait_per_caller
    mine = await merchant_with_key(api)
    order = await create_order(api, mine.id, payment_timeout_seconds=120)
    other = await merchant_with_key(api)
    theirs = await create_order(api, other.id, payment_timeout_seconds=120)
    params = {"from": "awaiting_payment", "timeout_seconds": "25"}
    headers = {"Authorization": f"Bearer {mine.api_key}"}
    limits = httpx.Limits(max_connections=share + 10)
    async with http_client(system.api_url, headers=headers, limits=limits) as client:
        held = [
            asyncio.create_task(client.get(PATH.format(order["id"]), params=params))
            for _ in range(share)
        ]
        await wait_for(lambda: _waiting(system), lambda count: count == share, "the share")
        refused = await client.get(PATH.format(order["id"]), params=params)
        assert_error(refused, 429, "order_waits_per_caller", None)
        assert refused.headers["Retry-After"] == "1"
        async with client_as(system, {"Authorization": f"Bearer {other.api_key}"}) as them:
            quick = {"from": "awaiting_payment", "timeout_seconds": "0.2"}
            answer = await them.get(PATH.format(theirs["id"]), params=quick)
        assert answer.status_code == 200, answer.text  # waited its 0.2 s, unchanged
        for each in held:
            each.cancel()
        await asyncio.gather(*held, return_exceptions=True)
    await wait_for(lambda: _waiting(system), lambda count: count == 0, "the waits to end", 5)
    full = await scraped(f"{system.api_url}/metrics", WAITS, outcome="caller_full")
    assert full >= 1
