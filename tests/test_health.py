"""Alive and ready: /healthz and /readyz on the API and the worker, and a worker that
drains on SIGTERM, so an order it was working on still completes, exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import httpx
from sqlmodel import Session, func, select
from temporalio.client import Client

import stack
from api.readiness import database_check, readiness_answer, temporal_check
from db.engine import make_engine
from db.tables import JournalEntry, PartyNotification
from tests.conftest import System
from tests.databases import migrated_engine
from tests.support import create_merchant, create_order, http_client, pay, wait_status


async def test_the_api_is_alive_and_ready(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
    ready = await anonymous.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}


async def test_the_worker_is_alive_and_ready_while_it_polls(system: System) -> None:
    async with http_client(
        f"http://127.0.0.1:{system.env['PAYSAGA_WORKER_HEALTH_PORT']}"
    ) as worker:
        assert (await worker.get("/healthz")).status_code == 200
        ready = await worker.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"polling": "ok", "database": "ok", "temporal": "ok"}


async def test_a_database_behind_the_code_or_an_absent_temporal_is_not_ready(
    tmp_path: Path, temporal: Client
) -> None:
    behind = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no migration ran
    current = migrated_engine(f"sqlite:///{tmp_path / 'current.db'}")
    try:
        assert (await database_check(current)).ok
        status, body = readiness_answer([await database_check(behind)])
    finally:
        behind.dispose()
        current.dispose()
    assert status == 503
    assert body["error"] == {
        "type": "api_error",
        "code": "not_ready",
        "message": "database: the schema is not at the newest migration",
        "param": None,
    }
    assert (await temporal_check(temporal)).ok
    nowhere = await Client.connect(f"127.0.0.1:{stack.free_port()}", lazy=True)
    absent = await temporal_check(nowhere)
    assert not absent.ok and absent.detail.startswith("unreachable")


async def test_sigterm_drains_the_worker_and_the_order_completes_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])  # the saga records, settles and notifies...
    worker = system.processes.process("worker")
    worker.send_signal(signal.SIGTERM)  # ...while its worker is told to stop
    try:
        code = await asyncio.to_thread(worker.wait, timeout=15)
    except subprocess.TimeoutExpired:
        raise AssertionError("the worker did not stop within 15 s of SIGTERM") from None
    assert code == 0, f"the worker exited with {code}, not cleanly"
    await asyncio.to_thread(system.restart_worker, kill=False)
    await wait_status(api, order["id"], "completed", timeout=60)  # as after any restart
    with Session(system.engine) as session:
        for table, expected in ((JournalEntry, 2), (PartyNotification, 2)):
            count = session.exec(
                select(func.count()).select_from(table).where(table.order_id == order["id"])
            ).one()
            assert count == expected, f"{table.__name__}: {count}"
