"""The orders: each plays its scenario against the API and the sandbox's controls, and
records what the client did and what it was told. The checker compares that record
with what every side holds at the end.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from chaos.client import GaveUp, RetryingClient
from chaos.plan import OrderPlan, Scenario

SHORT_WINDOW_S = 3  # the payment window of orders meant to time out
LONG_WINDOW_S = 3600  # of the others: it never closes during a run
STATUS_DEADLINE_S = 240.0
DELAY_MS = 1500  # a delayed notification's delay
WAITING = frozenset({"created"})  # before the payment exists at the channel


@dataclass
class RefundAttempt:
    key: str
    amount: int
    answers: list[int] = field(default_factory=list)  # status codes, one per request
    refund_ids: set[str] = field(default_factory=set)  # the ids the 201s named


@dataclass
class OrderRecord:
    """What the client did with one order, and what it was told."""

    plan: OrderPlan
    key: str  # the Idempotency-Key of the order's creation
    order_id: str | None = None
    ids_answered: set[str] = field(default_factory=set)  # more than one: a doubled order
    payable: int = 0
    paid: bool = False  # the sandbox confirmed the buyer's payment
    declined: bool = False
    saw_closed: bool = False  # the client was told the order closed (before a late payment)
    cancel_status: int | None = None  # the cancel call's answer
    refunds: list[RefundAttempt] = field(default_factory=list)
    gave_up: str | None = None  # a call the client never got an answer to
    steps: list[str] = field(default_factory=list)


class Workload:
    def __init__(
        self, api: RetryingClient, sandbox: RetryingClient, merchant_id: str, run_tag: str
    ) -> None:
        self.api = api
        self.sandbox = sandbox
        self.merchant_id = merchant_id
        self.run_tag = run_tag

    async def play(self, plan: OrderPlan) -> OrderRecord:
        record = OrderRecord(plan=plan, key=f"chaos-{self.run_tag}-{plan.number}")
        try:
            await self._play(plan, record)
        except GaveUp as error:
            record.gave_up = str(error)
        return record

    async def _play(self, plan: OrderPlan, record: OrderRecord) -> None:
        await self._create(record)
        if record.order_id is None:
            return
        status = await self._wait_status(record.order_id, lambda s: s not in WAITING)
        record.steps.append(f"placed:{status}")
        if status != "awaiting_payment":
            return
        scenario = plan.scenario
        if scenario in (Scenario.PAY, Scenario.REFUND_RACE):
            await self._pay(record, plan.notify)
        elif scenario is Scenario.DECLINE:
            response = await self._control(record, "decline")
            record.declined = response.status_code == 200
        elif scenario is Scenario.CANCEL:
            await self._cancel(record)
        elif scenario is Scenario.CANCEL_RACING_PAY:
            await asyncio.gather(self._cancel(record), self._pay(record, plan.notify))
        elif scenario is Scenario.LATE_PAY:
            seen = await self._wait_status(record.order_id, lambda s: s == "closed")
            record.saw_closed = seen == "closed"
            record.steps.append(f"seen:{seen}")
            await self._pay(record, _late_notify(plan.notify), force=True)
        if scenario is Scenario.REFUND_RACE and record.paid:
            await self._wait_status(record.order_id, lambda s: s == "completed")
            await self._race_refunds(record)

    async def _create(self, record: OrderRecord) -> None:
        plan = record.plan
        timeout = SHORT_WINDOW_S if plan.scenario in _TIMING_OUT else LONG_WINDOW_S
        body = {
            "merchant_id": self.merchant_id,
            "channel": plan.channel,
            "currency": "CNY",
            "lines": [
                {"sku": "tea", "name": "Tea", "quantity": 1 + plan.number % 3, "unit_amount": 1999}
            ],
            "payment_timeout_seconds": timeout,
        }
        headers = {"Idempotency-Key": record.key}
        for _ in range(2):  # the second: a client that never saw the first answer
            response = await self.api.call("POST", "/v1/orders", json=body, headers=headers)
            record.steps.append(f"create:{response.status_code}")
            if response.status_code == 201:
                order = response.json()
                record.ids_answered.add(order["id"])
                record.order_id = order["id"]
                record.payable = order["amounts"]["payable"]

    async def _pay(self, record: OrderRecord, notify: str, force: bool = False) -> None:
        instruction: dict[str, Any] = {"notify": notify, "force": force}
        if notify == "delay":
            instruction["delay_ms"] = DELAY_MS
        response = await self._control(record, "pay", json=instruction)
        record.paid = response.status_code == 200 and response.json()["status"] == "paid"

    async def _control(self, record: OrderRecord, action: str, **options: Any) -> Any:
        path = f"/control/payments/{record.order_id}/{action}"
        response = await self.sandbox.call(
            "POST", path, params={"channel": record.plan.channel}, **options
        )
        record.steps.append(f"{action}:{response.status_code}")
        return response

    async def _cancel(self, record: OrderRecord) -> None:
        response = await self.api.call("POST", f"/v1/orders/{record.order_id}/cancel", json={})
        record.cancel_status = response.status_code
        record.steps.append(f"cancel:{response.status_code}")

    async def _race_refunds(self, record: OrderRecord) -> None:
        """Two refunds that cannot both fit (60% each), each sent twice at once."""
        share = record.payable * 6 // 10
        attempts = [RefundAttempt(key=f"{record.key}-refund-{n}", amount=share) for n in (1, 2)]
        record.refunds = attempts
        await asyncio.gather(*(self._refund(record, a) for a in attempts for _ in range(2)))

    async def _refund(self, record: OrderRecord, attempt: RefundAttempt) -> None:
        response = await self.api.call(
            "POST",
            f"/v1/orders/{record.order_id}/refunds",
            json={"amount": attempt.amount, "reason": "chaos"},
            headers={"Idempotency-Key": attempt.key},
        )
        attempt.answers.append(response.status_code)
        if response.status_code == 201:
            attempt.refund_ids.add(response.json()["id"])

    async def _wait_status(self, order_id: str, accept: Any) -> str:
        """The order's status once `accept` holds for it (or the last one seen)."""
        deadline = time.monotonic() + STATUS_DEADLINE_S
        status = ""
        while time.monotonic() < deadline:
            response = await self.api.call("GET", f"/v1/orders/{order_id}")
            status = response.json().get("status", "") if response.status_code == 200 else ""
            if accept(status):
                return status
            await asyncio.sleep(0.5)  # the poll interval of a client waiting on a state
        return status


_TIMING_OUT = frozenset({Scenario.TIMEOUT, Scenario.LATE_PAY})


def notify_mode(plan: OrderPlan) -> str:
    """How the client asks the sandbox to deliver the order's payment notification ("" if
    the scenario pays nothing)."""
    if plan.scenario is Scenario.LATE_PAY:
        return _late_notify(plan.notify)
    paying = (Scenario.PAY, Scenario.REFUND_RACE, Scenario.CANCEL_RACING_PAY)
    return plan.notify if plan.scenario in paying else ""


def _late_notify(planned: str) -> str:
    """A payment after the window closed is known only by its notification (the saga that
    would poll has ended), and a channel retries one for a day: it may come late or twice,
    but it comes. Neither dropped nor "normal" (which the sandbox's rates may drop)."""
    return planned if planned in ("duplicate", "delay") else "delay"
