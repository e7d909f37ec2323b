"""The whole run: start the system, load it and break it, drain, check, report."""

from __future__ import annotations

import asyncio
import secrets
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

from api.auth.tokens import issue_access_token, utc_now
from api.manage import create_operator
from chaos import facts as read
from chaos.checker import check, count_statuses, still_settling
from chaos.client import CallStats, RetryingClient
from chaos.config import ChaosConfig
from chaos.plan import Kill, OrderPlan, kill_schedule, order_plans, worker_name
from chaos.postgres import OwnPostgres
from chaos.report import Figures, passed, render, write_summary
from chaos.system import ChaosSystem, system_env
from chaos.workload import OrderRecord, Workload, notify_mode
from db.migrate import upgrade_to_head
from settings import settings_from_env
from stack import free_port

# The sandbox's faults at a rate while the run breaks things (none during the drain).
FAULT_RATES = {
    "channels": {
        channel: {"error_rate": 0.05, "slow_rate": 0.05, "slow_ms": 1500}
        for channel in ("alipay", "wechatpay", "card")
    },
    "notify": {"drop_rate": 0.1, "duplicate_rate": 0.1, "delay_rate": 0.1, "delay_ms": 1500},
}


class ChaosRun:
    def __init__(self, config: ChaosConfig, work: Path, database_url: str) -> None:
        self.config = config
        self.work = work
        self.database_url = database_url
        self.postgres: OwnPostgres | None = None
        self.system = ChaosSystem(work, system_env(work, database_url))
        self.figures = Figures(orders=config.orders, seed=config.seed, database=config.database)
        self.stats = CallStats()
        self._processes = asyncio.Lock()  # one start or kill at a time
        self._faulty = True
        self._seen_faults: dict[str, int] = {}  # the sandbox's counts when last read

    async def run(self) -> bool:
        started = time.monotonic()
        await asyncio.to_thread(self.system.start_all)
        for more in range(1, self.config.workers):
            await asyncio.to_thread(self.system.start, worker_name(more))
        api, sandbox = await self._clients()
        try:
            workload = Workload(api, sandbox, await self._merchant(api), secrets.token_hex(3))
            await self._set_fault_rates(sandbox, FAULT_RATES)
            plans = order_plans(self.config.orders, self.config.seconds, self.config.seed)
            records = await self._break_while_loading(workload, plans, sandbox)
            drain_started = time.monotonic()
            await self._drain()
            self.figures.drain_s = time.monotonic() - drain_started
            facts = await self._facts()
        finally:
            await api.aclose()
            await sandbox.aclose()
            await asyncio.to_thread(self.system.stop_all)
        problems = check(records, facts)
        self._fill_figures(plans, records, facts, time.monotonic() - started)
        print(render(self.figures, problems), flush=True)
        write_summary(self.config.summary_path, self.figures, problems)
        print(f"summary: {self.config.summary_path}; logs: {self.work}", flush=True)
        return passed(problems)

    async def _clients(self) -> tuple[RetryingClient, RetryingClient]:
        env = self.system.env
        operator_id = create_operator(
            self.database_url,
            f"chaos-{secrets.token_hex(4)}@ops.example.com",
            secrets.token_urlsafe(16),
            "Chaos",
        )
        settings = settings_from_env(env)  # as the processes read them
        token = issue_access_token(settings, operator_id, "operator", utc_now())
        api = RetryingClient(self.system.api_url, {"Authorization": f"Bearer {token}"}, self.stats)
        key = env["PAYSAGA_SANDBOX_API_KEY"]
        sandbox = RetryingClient(
            self.system.sandbox_url, {"Authorization": f"Bearer {key}"}, self.stats
        )
        return api, sandbox

    async def _merchant(self, api: RetryingClient) -> str:
        body = {
            "name": "Chaos shop",
            "commission_rate": "0.05",
            "settlement_currency": "CNY",
            "bank_account_number": "DE89 3704 0044 0532 0130 00",
        }
        response = await api.call("POST", "/v1/merchants", json=body)
        response.raise_for_status()
        return str(response.json()["id"])

    async def _break_while_loading(
        self, workload: Workload, plans: list[OrderPlan], sandbox: RetryingClient
    ) -> list[OrderRecord]:
        slots = asyncio.Semaphore(self.config.concurrency)
        began = time.monotonic()

        async def one(plan: OrderPlan) -> OrderRecord:
            await asyncio.sleep(max(0.0, began + plan.start_at_s - time.monotonic()))
            async with slots:
                return await workload.play(plan)

        config = self.config
        kills = kill_schedule(config.seconds, config.seed, config.kill_every_s, config.workers)
        if self.postgres is None:
            kills = [k for k in kills if k.target != "postgres"]
        monkey = asyncio.create_task(
            self._kill_on_schedule(kills if self.config.kills else [], sandbox)
        )
        supervisor = asyncio.create_task(self._revive_forever(sandbox))
        try:
            records = await asyncio.gather(*(one(plan) for plan in plans))
        finally:
            monkey.cancel()
            await asyncio.gather(monkey, return_exceptions=True)
            self._faulty = False
            await self._set_fault_rates(sandbox, {})
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        return list(records)

    async def _kill_on_schedule(self, kills: list[Kill], sandbox: RetryingClient) -> None:
        began = time.monotonic()
        for kill in kills:
            await asyncio.sleep(max(0.0, began + kill.at_s - time.monotonic()))
            async with self._processes:
                await self._kill(kill, sandbox)

    async def _kill(self, kill: Kill, sandbox: RetryingClient) -> None:
        if kill.pause:
            await self._pause(kill)
            return
        print(f"  [{kill.at_s:6.1f} s] kill {kill.target}, down {kill.down_s} s", flush=True)
        if kill.target == "sandbox":
            await self._collect_sandbox_faults(sandbox)
        if kill.target == "postgres":
            assert self.postgres is not None
            await asyncio.to_thread(self.postgres.crash)
        else:
            await asyncio.to_thread(self.system.kill, kill.target)
        if kill.target == "sandbox":
            self._seen_faults = {}  # a new sandbox counts from zero
        self.figures.kills[kill.target] += 1
        await asyncio.sleep(kill.down_s)  # down for a while, as a real crash is
        if kill.target == "postgres":
            assert self.postgres is not None
            await asyncio.to_thread(self.postgres.start)
        else:
            await asyncio.to_thread(self.system.start, kill.target)
        if kill.target == "sandbox" and self._faulty:
            await self._set_fault_rates(sandbox, FAULT_RATES)

    async def _pause(self, kill: Kill) -> None:
        """Stop a worker where it stands and let it go on later: it is not told, and
        finds its workflow tasks gone to another worker when it wakes."""
        print(f"  [{kill.at_s:6.1f} s] pause {kill.target} for {kill.down_s} s", flush=True)
        process = self.system.processes.process(kill.target)
        process.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(kill.down_s)
        finally:
            process.send_signal(signal.SIGCONT)  # never left stopped, even if cancelled
        self.figures.kills[f"pause {kill.target}"] += 1

    async def _revive_forever(self, sandbox: RetryingClient) -> None:
        while True:
            await asyncio.sleep(1)
            async with self._processes:
                try:
                    revived = await asyncio.to_thread(self.system.revive)
                except Exception as error:  # any failure: retried on the next round
                    print(f"  revive failed: {error}", flush=True)
                    continue
            for name in revived:
                print(f"  {name} died on its own: restarted", flush=True)
            if "sandbox" in revived:
                self._seen_faults = {}  # its counts since the last look are lost
                if self._faulty:
                    await self._set_fault_rates(sandbox, FAULT_RATES)

    async def _set_fault_rates(self, sandbox: RetryingClient, rates: dict[str, object]) -> None:
        await self._collect_sandbox_faults(sandbox)
        body = {**rates, "seed": self.config.seed}
        response = await sandbox.call("PUT", "/control/fault-rates", json=body)
        response.raise_for_status()

    async def _collect_sandbox_faults(self, sandbox: RetryingClient) -> None:
        """Add what the sandbox injected since we last looked (it forgets its counts when
        it dies: read just before each kill, and at the end)."""
        response = await sandbox.call("GET", "/control/fault-rates")
        injected: dict[str, int] = response.json()["injected"]
        for kind, count in injected.items():
            self.figures.faults[kind] += count - self._seen_faults.get(kind, 0)
        self._seen_faults = injected

    async def _drain(self) -> None:
        """Wait (faults off, every process up) until no order is left unfinished and
        nothing else is still settling (checker.still_settling)."""
        deadline = time.monotonic() + self.config.drain_seconds
        while time.monotonic() < deadline:
            await asyncio.to_thread(self.system.revive)
            unfinished = await asyncio.to_thread(read.unfinished_orders, self.database_url)
            if unfinished == 0 and not still_settling(await self._facts()):
                return
            await asyncio.sleep(2)

    async def _facts(self) -> read.Facts:
        facts = read.Facts()
        await asyncio.to_thread(read.read_database, self.database_url, facts)
        read.read_sandbox_store(Path(self.system.env["PAYSAGA_SANDBOX_STORE_PATH"]), facts)
        await read.read_workflows(self.system.temporal_address, facts)
        return facts

    def _fill_figures(
        self, plans: list[OrderPlan], records: list[OrderRecord], facts: read.Facts, took: float
    ) -> None:
        figures = self.figures
        figures.duration_s = took
        figures.scenarios = dict(Counter(str(p.scenario) for p in plans))
        ours = [facts.orders[r.order_id] for r in records if r.order_id in facts.orders]
        figures.final_statuses = count_statuses(ours)
        figures.died_on_their_own = dict(self.system.died_on_their_own)
        figures.faults.update(
            f"client.notify_{mode}"
            for mode in map(notify_mode, plans)
            if mode not in ("", "normal")
        )
        figures.client_retries = dict(self.stats.retried)
        figures.server_errors = self.stats.server_errors
        figures.workflows = dict(Counter(f"{w.type}:{w.status}" for w in facts.workflows))


def run(config: ChaosConfig) -> bool:
    # Kept after the run: the processes' logs are the evidence behind any problem found.
    work = config.work_dir or Path("var/chaos") / f"run-{config.seed}-{int(time.time())}"
    work.mkdir(parents=True, exist_ok=True)
    postgres: OwnPostgres | None = None
    if config.database == "postgresql":
        postgres = OwnPostgres(Path(tempfile.mkdtemp(prefix="paysaga-chaos-pg-")), free_port())
        postgres.create()
        database_url = postgres.url
    else:
        database_url = f"sqlite:///{work / 'paysaga.db'}"
    chaos: ChaosRun | None = None
    try:
        upgrade_to_head(database_url)
        chaos = ChaosRun(config, work, database_url)
        chaos.postgres = postgres
        return asyncio.run(chaos.run())
    finally:
        # Services start and restart in threads (their health checks block): a SIGTERM
        # (make chaos stopped) ends the event loop while one goes on starting them, and the
        # run's own stop can come before it. asyncio.run has joined those threads by now,
        # so what they started is stopped here (a no-op once the run stopped it all).
        if chaos is not None:
            chaos.system.stop_all()
        if postgres is not None:
            postgres.remove()
