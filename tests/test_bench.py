"""The bench's pure parts (percentiles, CPU from /proc lines, goals, the table, the knobs),
its settlement and reconciliation cases at a tiny scale on real databases, and the bare
floor's shape on the real Temporal dev server."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.config import from_env, parse_rows, parse_scale
from bench.figures import Goal, Row, cpu_ticks, ms_per_item, percentile, render_table
from bench.floor import (
    floor_worker,
    free_udp_port,
    listen_for_checkouts,
    one_saga,
    signalled_after_first_task,
    tells_after_first_task,
)
from bench.reconciliation import measure as measure_reconciliation
from bench.reconciliation import reported as reconciliation_reported
from bench.reconciliation_seed import KINDS
from bench.settlement import measure, reported
from bench.stand import Stand
from db.reconcile import ledger_problems
from db.tables import Account, Statement
from domain.ledger import AccountKind
from tests.databases import create_database, drop_database, migrated_engine
from tests.support import settings_from_env


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) == 0.0


def test_cpu_ticks_reads_utime_and_stime_after_a_name_with_spaces() -> None:
    line = "4242 (uvicorn (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0"
    assert cpu_ticks(line) == 300
    assert ms_per_item(300, 100) == 30.0  # 3 s of CPU over 100 orders


def test_goals_and_the_table() -> None:
    rows = [
        Row("ratio", 0.5, "x", Goal(">=", 0.8)),
        Row("cpu", 40.0, "ms", Goal("<=", 45)),
        Row("events", 0, "", Goal("==", 0)),
        Row("not measured", None),
    ]
    table = render_table(rows)
    assert "| ratio | 0.50 x | >= 0.8 | MISSED |" in table
    assert "| cpu | 40 ms | <= 45 | ok |" in table
    assert "| events | 0 | == 0 | ok |" in table
    assert "| not measured | n/a |  |  |" in table


def test_knobs() -> None:
    assert parse_scale("full") == (1_000_000, 10_000)
    assert parse_scale("100000/1000") == (100_000, 1_000)
    assert parse_scale("0") == (0, 0)
    assert from_env({}).settlement_orders == 1_000_000  # make bench: full size by default
    config = from_env({"BENCH_ORDERS": "10", "BENCH_DATABASES": "sqlite"})
    assert (config.orders, config.databases) == (10, ("sqlite",))
    with pytest.raises(ValueError, match="BENCH_DATABASES"):
        from_env({"BENCH_DATABASES": "mysql"})
    assert (parse_rows("full"), parse_rows("small"), parse_rows("0")) == (1_000_000, 20_000, 0)
    assert parse_rows("5000") == 5000
    assert from_env({}).reconciliation_rows == 1_000_000
    assert from_env({"BENCH_RECONCILIATION_SCALE": "0"}).reconciliation_rows == 0


# -- the settlement case, at a tiny scale: it runs, and reports both figures ----------------

SETTLEMENT_BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(params=SETTLEMENT_BACKENDS)
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database at head with no rows, of its own: the case seeds and counts all of it."""
    if request.param == "sqlite":
        engine = migrated_engine(f"sqlite:///{tmp_path / 'settlement.db'}")
        yield engine
        engine.dispose()
        return
    server, name = os.environ["TEST_DATABASE_URL"], f"bench_{secrets.token_hex(4)}"
    engine = migrated_engine(create_database(server, name))
    yield engine
    engine.dispose()
    drop_database(server, name)


def test_the_settlement_case_settles_a_valid_seeded_day_and_reports_both_figures(
    empty_engine: Engine,
) -> None:
    figures = measure(empty_engine, 120, 3, lambda _line: None)
    assert (figures.statements, figures.payouts) == (3, 3)  # each merchant stated and paid
    assert figures.floor_s > 0 and figures.run_s > 0
    data, rows = reported(empty_engine.dialect.name, figures)
    assert data["ratio"] == figures.run_s / figures.floor_s
    table = render_table(rows)
    assert "one GROUP BY + the writes it needs" in table
    assert "the product's run (statements + payouts)" in table
    assert "| <= 2 |" in table
    with Session(empty_engine) as session:
        assert ledger_problems(session) == []  # the seeded ledger, and after settling it
        statements = session.exec(select(Statement)).all()
        assert sorted(s.order_count for s in statements) == [40, 40, 40]
        assert all(s.payout_amount > 0 and s.closing_balance == 0 for s in statements)
        available = session.exec(
            select(Account).where(Account.kind == AccountKind.MERCHANT_AVAILABLE.value)
        ).all()
        assert [a.balance for a in available] == [0, 0, 0]  # all of it paid out


# -- the reconciliation case, at a tiny scale: every planted difference, nothing else --------


def test_the_reconciliation_case_finds_exactly_what_was_planted_and_reports_both_figures(
    empty_engine: Engine, tmp_path: Path
) -> None:
    url = empty_engine.url.render_as_string(hide_password=False)
    figures = measure_reconciliation(url, 400, tmp_path, lambda _line: None, rounds=2)
    assert figures.planted == 2 * len(KINDS)
    assert figures.found == {kind.value: 2 for kind in KINDS}
    assert (figures.missed, figures.extra) == (0, 0)
    assert figures.bill_lines == 400 - 2 - 2 + 2 + 2  # less missing there and refunds missing
    assert figures.floor_s > 0 and figures.run_s > 0
    assert len(figures.floor_times) == len(figures.run_times) == 2  # interleaved rounds
    assert figures.run_s == sum(figures.run_times) / 2  # the median of two
    assert figures.floor_peak_mb > 10 and figures.run_peak_mb > 10  # whole processes, in MB
    data, rows = reconciliation_reported(empty_engine.dialect.name, figures)
    assert data["ratio"] == figures.run_s / figures.floor_s and data["exact"] is True
    table = render_table(rows)
    assert "a bare DuckDB join of the two files (median)" in table
    assert "the product's match_bill (median)" in table
    assert "| planted and not found | 0 | == 0 | ok |" in table.replace(
        f"[{empty_engine.dialect.name}] reconciliation, a bill of 400 lines against 400 of our"
        " rows:   ",
        "",
    )


# -- the stand: every process's database pool fits the server at once ------------------------


def test_a_stand_leaves_the_benchs_own_environment_as_it_was(tmp_path: Path) -> None:
    """A stand's settings are read from its env, never put into the bench's own: the next
    stand would take the last one's pools for pools set by hand (it did)."""
    before = dict(os.environ)
    first = Stand(tmp_path, f"sqlite:///{tmp_path / 'paysaga.db'}")
    assert first.operator_headers()["Authorization"].startswith("Bearer ")
    assert dict(os.environ) == before


def test_a_pool_set_by_hand_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSAGA_DATABASE_POOL__SIZE", "7")
    monkeypatch.setenv("PAYSAGA_DATABASE_POOL__OVERFLOW", "3")
    pool = Stand(tmp_path, f"sqlite:///{tmp_path / 'paysaga.db'}").pool
    assert (pool.size, pool.overflow) == (7, 3)


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="TEST_DATABASE_URL not set")
def test_the_stand_fits_its_processes_pools_in_the_servers_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYSAGA_DATABASE_POOL__SIZE", raising=False)
    monkeypatch.delenv("PAYSAGA_DATABASE_POOL__OVERFLOW", raising=False)
    server, name = os.environ["TEST_DATABASE_URL"], f"bench_{secrets.token_hex(4)}"
    url = create_database(server, name)
    try:
        pool = settings_from_env(Stand(tmp_path, url).env).database_pool
        with psycopg.connect(server) as connection:
            row = connection.execute("SHOW max_connections").fetchone()
        assert row is not None
        # The scale-out case's two APIs and two workers, each at its most, and room beside.
        assert 4 * (pool.size + pool.overflow) <= int(row[0]) - 10
        assert pool.size >= 10  # still a pool: the product's old one kept 10
    finally:
        drop_database(server, name)


async def test_the_floor_is_the_sagas_shape_13_events_in_two_workflow_tasks(
    temporal_address: str,
) -> None:
    """The bare saga's buyer signals once its payment step is done, as ours pay once the
    API answered: a signal sent at once ran many floors in one task (10 events)."""
    port = free_udp_port()
    listener, checkouts = await listen_for_checkouts(port)
    client = await Client.connect(temporal_address)
    queue = f"floor-{secrets.token_hex(4)}"
    try:
        with ThreadPoolExecutor(max_workers=4) as executor:
            async with floor_worker(client, queue, port, executor):
                sagas = [
                    one_saga(client, queue, secrets.token_hex(8), checkouts) for _ in range(20)
                ]
                ids = await asyncio.gather(*sagas)
    finally:
        listener.close()
    assert checkouts.late == 0
    for workflow_id in ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        kinds = [EventType.Name(event.event_type)[11:] for event in history.events]
        assert len(kinds) == 13, kinds
        assert kinds.count("WORKFLOW_TASK_COMPLETED") == 2, kinds
        assert kinds.index("WORKFLOW_EXECUTION_SIGNALED") > kinds.index("MARKER_RECORDED") + 1
        # As ours, whose buyer pays once the API has the checkout (the update's answer, sent
        # when the first task is done): the signal reaches the server after the first task
        # is done. Sooner, the server hands the second task back with the first's
        # completion, skipping its dispatch through matching: cheaper than any order.
        assert signalled_after_first_task(history.events) or not tells_after_first_task()
    if not tells_after_first_task():
        pytest.skip("this temporalio's worker has no core to wrap: told from the payment step")
