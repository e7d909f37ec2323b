"""The bench's wait for a round's sagas (bench.probes.until_ended), on a real SQLite
file: it ends on any final status, and its polls never take the one writer's lock."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from bench import probes
from db.engine import make_engine


def _orders(path: Path, rows: list[tuple[str, str]]) -> str:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT)")
        db.executemany("INSERT INTO orders VALUES (?, ?)", rows)
    return f"sqlite:///{path}"


async def test_an_order_compensated_after_payment_ends_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Paid (the buyer saw it), then given back: final, never `completed`.
    url = _orders(tmp_path / "db.sqlite", [("ord_a", "completed"), ("ord_b", "refunded")])
    monkeypatch.setattr(probes, "ENDED_WITHIN_S", 1.0)  # 120 s in the bench
    began = time.monotonic()
    await probes.until_ended(url, ["ord_a", "ord_b"])
    assert time.monotonic() - began < 0.5


async def test_the_poll_takes_no_write_lock_on_sqlite(tmp_path: Path) -> None:
    """make_engine's SQLite connections BEGIN IMMEDIATE unless read-only: a poll that did
    would wait here behind the saga's open write."""
    url = _orders(tmp_path / "db.sqlite", [("ord_a", "completed")])
    engine = make_engine(url)
    writer = engine.connect()
    writer.execute(text("UPDATE orders SET status = 'completed'"))  # a saga's write, open
    try:
        began = time.monotonic()
        await asyncio.wait_for(probes.until_ended(url, ["ord_a"]), 3)
        assert time.monotonic() - began < 0.5
    finally:
        writer.rollback()
        writer.close()
        engine.dispose()
