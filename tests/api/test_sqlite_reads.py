"""On SQLite, answers that only read take no write lock: while a writer holds the
database (a ledger posting, a coupon reservation), pages of orders and merchants still
answer, and a read never holds a writer up."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import System
from tests.support import create_merchant


@contextmanager
def write_lock_held(database_url: str) -> Iterator[None]:
    """Hold SQLite's one write lock, as a long writing transaction of the worker would."""
    connection = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


@pytest.mark.parametrize("system", ["sqlite"], indirect=True)
async def test_reads_answer_while_a_writer_holds_the_database(
    system: System, api: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    with write_lock_held(system.env["PAYSAGA_DATABASE_URL"]):
        # Before, each read began IMMEDIATE and waited for the lock (up to 30 s).
        for path in ("/v1/orders?limit=1", f"/v1/merchants/{merchant_id}", "/v1/merchants"):
            response = await api.get(path, timeout=5)
            assert response.status_code == 200, (path, response.text)
