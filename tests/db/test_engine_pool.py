"""A process keeps the connections its threads use at once: under steady concurrency no
connection is opened and closed per use (settings.DatabasePool)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from db.engine import make_engine, read_session_factory
from settings import DatabasePool

THREADS = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pool.db'}"
        return
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set")
    yield url


def connections_opened(engine: Engine, rounds: int) -> int:
    """How many connections `engine` opened while THREADS threads each held one at once,
    `rounds` times over."""
    opened = 0

    @event.listens_for(engine, "connect")
    def _count(*_: object) -> None:
        nonlocal opened
        opened += 1

    reads = read_session_factory(engine)  # no write lock taken: SQLite readers run side by side

    def hold(together: threading.Barrier) -> None:
        with reads() as session:
            session.execute(text("SELECT 1"))
            together.wait(timeout=10)  # every thread holds its connection here at once

    for _ in range(rounds):
        together = threading.Barrier(THREADS)
        with ThreadPoolExecutor(max_workers=THREADS) as threads:
            for held in [threads.submit(hold, together) for _ in range(THREADS)]:
                held.result()
    return opened


def test_a_pool_as_large_as_the_threads_opens_each_connection_once(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=THREADS, pool_overflow=2)
    try:
        assert connections_opened(engine, rounds=3) == THREADS
    finally:
        engine.dispose()


def test_a_smaller_pool_opens_and_closes_its_overflow_on_every_round(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=2, pool_overflow=THREADS)
    try:
        assert connections_opened(engine, rounds=3) == 2 + 3 * (THREADS - 2)
    finally:
        engine.dispose()


def test_a_process_keeps_more_than_before_within_the_same_ceiling() -> None:
    # SQLAlchemy's defaults kept 10 and opened 20 more: a PostgreSQL sized for those holds
    # every process still.
    pool = DatabasePool()
    assert pool.size > 10
    assert pool.size + pool.overflow <= 10 + 20
