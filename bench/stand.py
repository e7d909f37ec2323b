"""The system the bench loads: chaos's (chaos/system.py: stack.py's processes on free ports,
the sandbox's clock sped up) with the timings `make run` has, a database of the bench's own,
the floor's worker beside paysaga's, an operator's token and a merchant."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import NullPool, create_engine, text

import stack
from api.auth.tokens import issue_access_token, utc_now
from api.manage import create_operator
from bench.floor import free_udp_port
from chaos.system import ChaosSystem, system_env
from db.engine import normalise_url
from db.migrate import upgrade_to_head
from settings import DatabasePool, settings_from_env

FLOOR_QUEUE = "bench-floor"
# Chaos's timers that only speed its recovery from the kills and lost messages it makes:
# the bench runs them as `make run` does. Under load the short ones cost what a deployment
# never pays: sticky tasks moved to another queue after 1 s (a whole history replayed),
# workflow tasks timed out after 2 s (three events each, and the task again), and a first
# payment query after 1 s where a loaded channel notifies later (a timer, a task, a query).
CHAOS_TIMINGS = (
    "PAYSAGA_WORKFLOW_TASK_TIMEOUT_SECONDS",
    "PAYSAGA_STICKY_QUEUE_TIMEOUT_SECONDS",
    "PAYSAGA_POLL__PAYMENT_FIRST_MAX_MS",
    "PAYSAGA_POLL__REFUND_FIRST_MS",
    "PAYSAGA_POLL__PAYOUT_FIRST_MS",
)
# The processes that hold database connections at once at most (the scale-out case's), and
# the connections left for the rest: the bench's own, its migration, a psql beside it.
DATABASE_PROCESSES = ("api", "worker", "api-2", "worker-2")
SPARE_CONNECTIONS = 20
POOL_SIZE, POOL_OVERFLOW = "PAYSAGA_DATABASE_POOL__SIZE", "PAYSAGA_DATABASE_POOL__OVERFLOW"


def pool_share(max_connections: int) -> DatabasePool:
    """Each process's equal share of a server's connections, at most the product's own pool:
    the bench's four processes at 30 each would ask a server of PostgreSQL's default 100 for
    120 (measured, with 40 kept and 10 more: 98 open in the scale-out case at 200 orders)."""
    share = max(1, (max_connections - SPARE_CONNECTIONS) // len(DATABASE_PROCESSES))
    default = DatabasePool()
    size = min(default.size, share)
    return DatabasePool(size=size, overflow=min(default.overflow, share - size))


def max_connections(database_url: str) -> int:
    engine = create_engine(normalise_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SHOW max_connections")).scalar_one())
    finally:
        engine.dispose()


@contextmanager
def bench_database(kind: str, work: Path, server_url: str) -> Iterator[str]:
    """A fresh database URL: a SQLite file under `work`, or a database created (and dropped
    afterwards) on the local PostgreSQL server."""
    if kind == "sqlite":
        yield f"sqlite:///{work / 'paysaga.db'}"
        return
    name = f"bench_{secrets.token_hex(4)}"
    driver_url = server_url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(f"{driver_url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server_url}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Stand:
    def __init__(self, work: Path, database_url: str) -> None:
        upgrade_to_head(database_url)
        self.database_url = database_url
        # Merchants' webhooks go to the bench's own receiver, on this machine.
        env = {**system_env(work, database_url), "PAYSAGA_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
        # The API's watch of waited-on orders reads every 50 ms (250 by default), so
        # pay-to-visible is timed to 50 ms, as when the bench read each order that often.
        env["PAYSAGA_ORDER_WAIT_INTERVAL_MS"] = "50"
        for chaos_only in CHAOS_TIMINGS:
            env.pop(chaos_only)
        self.pool = DatabasePool()
        if not database_url.startswith("sqlite"):  # a server every process's pool must fit
            self.pool = pool_share(max_connections(database_url))
        self.pool = DatabasePool(  # unless make bench's caller named its own
            size=int(os.environ.get(POOL_SIZE, self.pool.size)),
            overflow=int(os.environ.get(POOL_OVERFLOW, self.pool.overflow)),
        )
        env[POOL_SIZE], env[POOL_OVERFLOW] = str(self.pool.size), str(self.pool.overflow)
        self.system = ChaosSystem(work, env)
        self.env = self.system.env
        self.checkout_port = free_udp_port()  # the floor worker's word to the bench (bench.floor)

    def start(self) -> None:
        self.system.start_all()
        address, port = self.system.temporal_address, str(self.checkout_port)
        command = [sys.executable, "-m", "bench.floor", address, FLOOR_QUEUE, port]
        self.system.processes.start("floor", command, self.system.work / "floor.log")
        stack.wait_until(lambda: stack.worker_polling(address, "default", FLOOR_QUEUE), "floor")

    def start_more(self, name: str) -> None:
        self.system.start(name)

    def stop(self) -> None:
        self.system.stop_all()

    def pids(self, names: list[str]) -> dict[str, int]:
        return {name: self.system.processes.process(name).pid for name in names}

    def operator_headers(self) -> dict[str, str]:
        operator_id = create_operator(
            self.database_url,
            f"bench-{secrets.token_hex(4)}@ops.example.com",
            secrets.token_urlsafe(16),
            "Bench",
        )
        settings = settings_from_env(self.env)  # as the processes read them
        token = issue_access_token(settings, operator_id, "operator", utc_now())
        return {"Authorization": f"Bearer {token}"}

    def sandbox_client(self) -> httpx.AsyncClient:
        key = self.env["PAYSAGA_SANDBOX_API_KEY"]
        return httpx.AsyncClient(
            base_url=self.system.sandbox_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    def api_client(self, name: str, headers: dict[str, str]) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        return httpx.AsyncClient(
            base_url=self.system.api_url_of(name), headers=headers, timeout=60, limits=limits
        )


async def new_merchant(api: httpx.AsyncClient, webhook_url: str | None = None) -> str:
    body: dict[str, object] = {
        "name": "Bench shop",
        "commission_rate": "0.05",
        "settlement_currency": "CNY",
        "bank_account_number": "DE89 3704 0044 0532 0130 00",
    }
    if webhook_url:
        body["webhook_url"] = webhook_url
    answer = await api.post("/v1/merchants", json=body)
    answer.raise_for_status()
    return str(answer.json()["id"])
