"""One database's measurements: interleaved rounds of the bare floor and of paysaga, latency
one at a time, history events, a duplicate storm, orders with and without a merchant
webhook, and two workers + two APIs."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from temporalio.client import Client

from bench import callbacks, cpu, probes
from bench.config import BenchConfig
from bench.figures import CLOCK_TICKS, percentile
from bench.floor import listen_for_checkouts, one_saga, signalled_after_first_task
from bench.orders import Shop, Timings, in_flight
from bench.stand import FLOOR_QUEUE, Stand, new_merchant
from bench.webhook_receiver import WebhookReceiver

PAYSAGA_PROCESSES = ["temporal", "worker", "api", "sandbox"]
WEBHOOK_DELAY_S = 0.5  # the merchant's endpoint is slow: no saga step may wait for it


def _own_ticks() -> int:
    times = os.times()
    return round((times.user + times.system) * CLOCK_TICKS)


@dataclass
class RoundFigures:
    kind: str  # "floor", "paysaga", "paysaga-2x2"
    items: int
    seconds: float
    cpu_ticks: dict[str, int]
    create_s: list[float] = field(default_factory=list)
    pay_to_visible_s: list[float] = field(default_factory=list)
    reads: int = 0
    retried_503: int = 0
    closed_at_create: int = 0

    @property
    def per_second(self) -> float:
        return self.items / self.seconds

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["per_second"] = self.per_second
        for name in ("create_s", "pay_to_visible_s"):
            values = data.pop(name)
            data[f"{name}_p50"] = percentile(values, 0.5)
            data[f"{name}_p99"] = percentile(values, 0.99)
        return data


class Load:
    def __init__(self, stand: Stand, config: BenchConfig, say: Callable[[str], None]) -> None:
        self.stand = stand
        self.config = config
        self.say = say
        self.results: dict[str, Any] = {"rounds": []}

    async def run(self) -> dict[str, Any]:
        stand = self.stand
        headers = stand.operator_headers()
        self.client = await Client.connect(stand.system.temporal_address)
        self.sandbox = stand.sandbox_client()
        self.apis = [stand.api_client("api", headers)]
        listener, self.checkouts = await listen_for_checkouts(stand.checkout_port)
        try:
            merchant = await new_merchant(self.apis[0])
            self.shop = Shop(self.apis, self.sandbox, merchant)
            await self._rounds()
            await self._serial()
            await self._events_and_duplicates()
            await self._callbacks()
            await self._webhooks()
            await self._scale_out(headers)
        finally:
            listener.close()
            for api in self.apis:
                await api.aclose()
            await self.sandbox.aclose()
        return self.results

    async def _rounds(self) -> None:
        n, config = self.config.orders, self.config
        self.say(f"  warm-up: {min(n, 20)} of each")
        await self._floor_round(min(n, 20), record=False)
        await self._paysaga_round("paysaga", min(n, 20), PAYSAGA_PROCESSES, record=False)
        for number in range(1, config.rounds + 1):
            floor = await self._floor_round(n)
            self.say(f"  round {number}: bare floor {floor.per_second:.1f} workflows/s")
            ours = await self._paysaga_round("paysaga", n, PAYSAGA_PROCESSES)
            self.say(f"  round {number}: paysaga {ours.per_second:.1f} orders/s")

    async def _floor_round(self, count: int, record: bool = True) -> RoundFigures:
        pids = self.stand.pids(["temporal", "floor"])
        queue, client, checkouts = FLOOR_QUEUE, self.client, self.checkouts
        self.floor_ids: list[str] = []

        async def one() -> None:
            self.floor_ids.append(await one_saga(client, queue, secrets.token_hex(8), checkouts))

        figures = await self._measured("floor", count, pids, one)
        if record:
            self.results["rounds"].append(figures.summary())
        return figures

    async def _paysaga_round(
        self,
        kind: str,
        count: int,
        processes: list[str],
        record: bool = True,
        shop: Shop | None = None,
    ) -> RoundFigures:
        timings = Timings()
        shop = shop or self.shop

        async def one() -> None:
            await shop.one_order(timings)

        async def ended() -> None:  # a buyer's page stops at the payment; the saga goes on
            await probes.until_ended(self.stand.database_url, timings.order_ids)

        figures = await self._measured(kind, count, self.stand.pids(processes), one, ended)
        figures.create_s, figures.pay_to_visible_s = timings.create_s, timings.pay_to_visible_s
        figures.reads, figures.retried_503 = timings.reads, timings.retried_503
        figures.closed_at_create = timings.closed_at_create
        self.last_timings = timings
        if record:
            self.results["rounds"].append(figures.summary())
        return figures

    async def _measured(
        self,
        kind: str,
        count: int,
        pids: dict[str, int],
        one: Callable[[], Any],
        finished: Callable[[], Awaitable[None]] | None = None,
    ) -> RoundFigures:
        """A round's figures: its time and CPU run until every `one` has returned and then
        `finished` (what the round set going is done) has."""
        before, own = cpu.sample(pids), _own_ticks()
        began = time.perf_counter()
        await in_flight(count, self.config.in_flight, one)
        if finished is not None:
            await finished()
        seconds = time.perf_counter() - began
        ticks = cpu.delta(before, cpu.sample(pids))
        ticks["bench client"] = _own_ticks() - own
        return RoundFigures(kind, count, seconds, ticks)

    async def _one_at_a_time(self, shop: Shop) -> Timings:
        timings = Timings()
        for _ in range(self.config.serial_orders):
            await shop.one_order(timings)
        return timings

    async def _serial(self) -> None:
        timings = await self._one_at_a_time(self.shop)
        count = self.config.serial_orders
        self.results["serial"] = {
            "orders": count,
            "create_s_p50": percentile(timings.create_s, 0.5),
            "create_s_p99": percentile(timings.create_s, 0.99),
            "pay_to_visible_s_p50": percentile(timings.pay_to_visible_s, 0.5),
            "pay_to_visible_s_p99": percentile(timings.pay_to_visible_s, 0.99),
        }
        self.say(f"  one at a time: create p50 {self.results['serial']['create_s_p50']:.3f} s")

    async def _events_and_duplicates(self) -> None:
        sample = self.last_timings.order_ids[:5]
        counts = [await probes.history_events(self.client, f"order-{o}") for o in sample]
        self.results["history_events_per_order"] = sum(counts) / len(counts)
        floor = [
            (await self.client.get_workflow_handle(f).fetch_history()).events
            for f in self.floor_ids[::20]
        ]
        self.results["history_events_per_floor_saga"] = sum(map(len, floor)) / len(floor)
        after = sum(signalled_after_first_task(events) for events in floor)
        self.results["floor_signalled_after_first_task"] = f"{after} of {len(floor)}"
        self.results["floor_signalled_late"] = self.checkouts.late
        payment = self.last_timings.payments[sample[0]]
        cost = await probes.resend_payment_notification(
            self.client, self.apis[0], self.sandbox, self.stand.env, payment, self.config.duplicates
        )
        self.results["duplicate"] = asdict(cost)
        self.say(
            f"  history: {self.results['history_events_per_order']:.1f} events/order, "
            f"{self.results['history_events_per_floor_saga']:.1f} per bare saga (signalled "
            f"after its first task: {self.results['floor_signalled_after_first_task']}); "
            f"{cost.sent} duplicates added {cost.events_added} events, "
            f"{cost.workflows_started} workflows"
        )

    async def _callbacks(self) -> None:
        """Genuine duplicates of the sample orders' payment notifications, each beside a
        forgery of it, at `callback_rate` a second for `callback_seconds`."""
        config = self.config
        if not config.callback_seconds:
            return
        messages: list[callbacks.Message] = []
        for order_id in self.last_timings.order_ids[:5]:
            payment = self.last_timings.payments[order_id]
            deliveries = (await self.sandbox.get(f"/control/payments/{order_id}/deliveries")).json()
            body, headers = probes.notification(self.stand.env, deliveries[0]["event_id"], payment)
            genuine: callbacks.Message = (body, headers, True)
            messages += [genuine, callbacks.forged(genuine)]
        figures = await callbacks.storm(
            self.apis[0],
            "/v1/channels/alipay/notify",
            messages,
            config.callback_rate,
            config.callback_seconds,
        )
        self.results["callbacks"] = figures.summary()
        self.say(
            f"  callbacks: {figures.sent} at {config.callback_rate:g}/s, p99 "
            f"{self.results['callbacks']['p99_ms']:.1f} ms, {figures.errors} errors"
        )

    async def _webhooks(self) -> None:
        """A round of orders of a merchant without a webhook URL, then as many of one with
        (its endpoint answers after WEBHOOK_DELAY_S): throughput, latency, history events."""
        receiver = WebhookReceiver(delay_s=WEBHOOK_DELAY_S)
        url = await receiver.start()
        try:
            hooked = Shop(self.apis, self.sandbox, await new_merchant(self.apis[0], url))
            count = self.config.orders
            plain = await self._paysaga_round("plain", count, PAYSAGA_PROCESSES)
            plain_ids = self.last_timings.order_ids
            before = await probes.webhook_workflows(self.client)
            hooks = await self._paysaga_round("webhooks", count, PAYSAGA_PROCESSES, shop=hooked)
            hooked_ids = self.last_timings.order_ids
            await probes.until_quiet(lambda: receiver.received)
            cost = await probes.webhook_cost(self.client, before, plain_ids, hooked_ids)
            # One at a time, the machine not saturated: a saga step that waited on the
            # delivery would add the endpoint's delay; at 50 in flight the delivery's CPU
            # alone slows every order.
            alone = [await self._one_at_a_time(s) for s in (self.shop, hooked)]
        finally:
            await receiver.stop()
        self.results["webhooks"] = {
            **asdict(cost),
            "received": receiver.received,
            "endpoint_delay_s": WEBHOOK_DELAY_S,
            "one_at_a_time_pay_to_visible_s_p50": {
                "without": percentile(alone[0].pay_to_visible_s, 0.5),
                "with": percentile(alone[1].pay_to_visible_s, 0.5),
            },
        }
        self.say(
            f"  webhooks: {plain.per_second:.1f} orders/s without, {hooks.per_second:.1f} with;"
            f" {cost.workflows_per_order:.1f} deliveries of {cost.events_per_delivery:.1f}"
            f" events per order, {cost.order_events_added:+.1f} events on the order's own"
        )

    async def _scale_out(self, headers: dict[str, str]) -> None:
        self.say("  scale-out: starting worker-2 and api-2")
        began = time.monotonic()
        for name in ("worker-2", "api-2"):
            await asyncio.to_thread(self.stand.start_more, name)
        self.apis.append(self.stand.api_client("api-2", headers))
        self.say(f"  scale-out: started in {time.monotonic() - began:.0f} s")
        processes = [*PAYSAGA_PROCESSES, "worker-2", "api-2"]
        figures = await self._paysaga_round("paysaga-2x2", self.config.orders, processes)
        self.say(f"  two workers + two APIs: {figures.per_second:.1f} orders/s")
