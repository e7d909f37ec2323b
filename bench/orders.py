"""Happy orders end to end, as a shop and a buyer make them: created through the API, paid
through the sandbox's control API (which notifies us as the channel would), watched through
the API (requests that wait for the status to change) until it shows them paid, as the
hosted checkout's page does (`domain.order_status.PAID_STATUSES`). The round goes on until
every saga has ended them (completed: `PAYSAGA_AUTO_COMPLETE_SECONDS=0`, at payment;
bench.probes.until_ended)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from domain.order_status import PAID_STATUSES

WAIT_S = 25  # how long one request waits for the order's status to change
DEADLINE_S = 120.0


@dataclass
class Timings:
    create_s: list[float] = field(default_factory=list)
    pay_to_visible_s: list[float] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)
    payments: dict[str, dict[str, object]] = field(default_factory=dict)  # the sandbox's views
    reads: int = 0  # status requests while waiting (they cost API CPU too)
    retried_503: int = 0  # creations answered 503 (saga slower than the API waits) and resent
    # Orders the saga closed as it opened them, the channel unavailable (an overloaded
    # sandbox): nothing to pay, so neither timed nor paid; their count is reported.
    closed_at_create: int = 0


class Shop:
    def __init__(
        self, apis: list[httpx.AsyncClient], sandbox: httpx.AsyncClient, merchant_id: str
    ) -> None:
        self.apis = apis  # one or more API processes, used in turn
        self.sandbox = sandbox
        self.merchant_id = merchant_id
        self._turn = 0

    def _api(self) -> httpx.AsyncClient:
        self._turn += 1
        return self.apis[self._turn % len(self.apis)]

    async def one_order(self, timings: Timings) -> None:
        api = self._api()
        body = {
            "merchant_id": self.merchant_id,
            "channel": "alipay",
            "currency": "CNY",
            "lines": [{"sku": "tea", "name": "Tea", "quantity": 1, "unit_amount": 1999}],
        }
        began = time.perf_counter()
        headers = {"Idempotency-Key": f"bench-{secrets.token_hex(8)}"}
        created = await api.post("/v1/orders", json=body, headers=headers)
        while created.status_code == 503:  # the API's patience ran out: the same key joins
            timings.retried_503 += 1
            await asyncio.sleep(min(float(created.headers.get("Retry-After", "1")), 1.0))
            created = await api.post("/v1/orders", json=body, headers=headers)
        created.raise_for_status()
        timings.create_s.append(time.perf_counter() - began)
        order_id = created.json()["id"]
        if created.json()["status"] == "closed":
            timings.closed_at_create += 1
            return
        timings.order_ids.append(order_id)
        paid_at = time.perf_counter()
        path = f"/control/payments/{order_id}/pay"
        paid = await self.sandbox.post(path, params={"channel": "alipay"}, json={})
        paid.raise_for_status()
        timings.payments[order_id] = paid.json()
        await self._until_visible(api, order_id, timings)
        timings.pay_to_visible_s.append(time.perf_counter() - paid_at)

    async def _until_visible(self, api: httpx.AsyncClient, order_id: str, t: Timings) -> None:
        """As a buyer's page does: wait for the status it shows to change, again until it
        shows the payment (the API answers each wait when the order moves, its watch
        reading every PAYSAGA_ORDER_WAIT_INTERVAL_MS: bench.stand sets 50)."""
        deadline = time.monotonic() + DEADLINE_S
        status = "awaiting_payment"  # what the creation answered
        while time.monotonic() < deadline:
            t.reads += 1
            params: dict[str, str | int] = {"from": status, "timeout_seconds": WAIT_S}
            answer = await api.get(f"/v1/orders/{order_id}/status-change", params=params)
            if answer.status_code != 200:  # 503: as many waiting as the API lets wait
                await asyncio.sleep(min(float(answer.headers.get("Retry-After", "1")), 1.0))
                continue
            status = answer.json()["status"]
            if status in PAID_STATUSES:
                return
        raise TimeoutError(f"order {order_id} not paid within {DEADLINE_S} s")


async def in_flight(count: int, at_once: int, one: Callable[[], Awaitable[None]]) -> float:
    """Run `one` `count` times, `at_once` at a time; the seconds it took."""
    slots = asyncio.Semaphore(at_once)

    async def slot() -> None:
        async with slots:
            await one()

    began = time.perf_counter()
    await asyncio.gather(*(slot() for _ in range(count)))
    return time.perf_counter() - began
