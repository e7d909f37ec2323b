"""db.arrow_reads on a real database (both backends): a query's rows reach DuckDB typed,
its parameters bound as the database compares them, and the read changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import adbc_driver_manager
import duckdb
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from db.arrow_reads import ArrowRead, _open, read_all_into, read_into
from db.engine import make_engine, read_one_snapshot
from tests.db.conftest import Shop

START = datetime(2025, 3, 5, 16, tzinfo=UTC)
UNTIL = START + timedelta(days=1)
TICK = timedelta(microseconds=1)
_COLUMNS = {"reference": "VARCHAR", "amount": "BIGINT", "paid_at": "TIMESTAMP"}


def _window(
    engine: Engine, shop: Shop, start: datetime, until: datetime
) -> list[tuple[object, ...]]:
    paid_at = "p.paid_at AT TIME ZONE 'UTC'" if engine.dialect.name == "postgresql" else "p.paid_at"
    query = (
        f"SELECT p.order_id, p.amount, {paid_at} FROM payments AS p WHERE p.channel = :channel"
        " AND p.status = 'paid' AND p.paid_at >= :start AND p.paid_at < :until"
    )
    con = duckdb.connect()
    with engine.connect() as db:
        params = {"channel": shop.channel, "start": start, "until": until}
        read_into(con, "day_rows", db, query, params, _COLUMNS)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE day_rows)").fetchall())
    assert types == _COLUMNS
    return con.execute("SELECT * FROM day_rows ORDER BY paid_at").fetchall()


def test_the_window_is_its_instants_exactly(shop: Shop, ledger_engine: Engine) -> None:
    at = {moment: shop.paid_order(paid_at=moment) for moment in (START - TICK, START)}
    at |= {moment: shop.paid_order(paid_at=moment) for moment in (UNTIL - TICK, UNTIL)}

    rows = _window(ledger_engine, shop, START, UNTIL)

    inside = [START, UNTIL - TICK]
    assert [(r[0], r[2]) for r in rows] == [(at[m], m.replace(tzinfo=None)) for m in inside]
    assert all(isinstance(r[1], int) and r[1] > 0 for r in rows)
    beijing = timezone(timedelta(hours=8))  # the same instants, told in another zone
    assert (
        _window(ledger_engine, shop, START.astimezone(beijing), UNTIL.astimezone(beijing)) == rows
    )


def test_an_empty_window_is_an_empty_table_of_the_same_columns(
    shop: Shop, ledger_engine: Engine
) -> None:
    shop.paid_order(paid_at=START)
    assert _window(ledger_engine, shop, UNTIL, UNTIL + timedelta(days=1)) == []


def test_a_postgresql_cast_is_not_a_parameter(shop: Shop, ledger_engine: Engine) -> None:
    if ledger_engine.dialect.name != "postgresql":
        pytest.skip("`::` casts are PostgreSQL's")
    shop.paid_order(paid_at=START)
    con = duckdb.connect()
    query = "SELECT count(*)::bigint FROM payments WHERE channel = :channel"
    with ledger_engine.connect() as db:
        read_into(con, "n", db, query, {"channel": shop.channel}, {"n": "BIGINT"})
    assert con.execute("SELECT n FROM n").fetchall() == [(1,)]


def test_a_read_of_sqlite_cannot_write(shop: Shop, ledger_engine: Engine) -> None:
    if ledger_engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's read is what its query says; SQLite's file is opened read-only")
    order_id = shop.paid_order(paid_at=START)
    con = duckdb.connect()
    query = "DELETE FROM payments WHERE order_id = :id RETURNING order_id"
    with ledger_engine.connect() as db, pytest.raises(Exception, match="readonly"):
        read_into(con, "gone", db, query, {"id": order_id}, {"order_id": "VARCHAR"})
    assert len(_window(ledger_engine, shop, START, UNTIL)) == 1


def _count(engine: Engine, shop: Shop) -> int:
    con = duckdb.connect()
    query = "SELECT count(*) FROM payments WHERE channel = :channel"
    with engine.connect() as db:
        read_into(con, "n", db, query, {"channel": shop.channel}, {"n": "BIGINT"})
    [(n,)] = con.execute("SELECT n FROM n").fetchall()
    return int(n)


def test_postgresql_reads_the_callers_snapshot(shop: Shop, ledger_engine: Engine) -> None:
    """The reconciliation reads the day in bulk here and again by key in its session: one
    snapshot (db.engine.read_one_snapshot), so the two agree."""
    if ledger_engine.dialect.name != "postgresql":
        pytest.skip("SQLite cannot share a snapshot between connections")
    shop.paid_order(paid_at=START)
    con = duckdb.connect()
    query = "SELECT count(*) FROM payments WHERE channel = :channel"
    with Session(ledger_engine) as session:
        read_one_snapshot(session)
        db = session.connection()
        db.exec_driver_sql("SELECT 1")  # the session's snapshot
        shop.paid_order(paid_at=START)  # committed after it
        read_into(con, "n", db, query, {"channel": shop.channel}, {"n": "BIGINT"})
    assert con.execute("SELECT n FROM n").fetchall() == [(1,)]


def test_reads_on_one_connection_each_land_in_their_table(
    shop: Shop, ledger_engine: Engine
) -> None:
    """The reconciliation reads the day's payments and refunds one after the other on one
    connection: each its own table, and on PostgreSQL both of the caller's snapshot."""
    shop.paid_order(paid_at=START)
    con = duckdb.connect()
    payments = "SELECT count(*) FROM payments WHERE channel = :channel"
    orders = "SELECT count(*) FROM orders WHERE channel = :channel"
    reads = [ArrowRead("p", payments, {"n": "BIGINT"}), ArrowRead("o", orders, {"n": "BIGINT"})]
    with Session(ledger_engine) as session:
        read_one_snapshot(session)
        db = session.connection()
        db.exec_driver_sql("SELECT 1")  # the session's snapshot
        if ledger_engine.dialect.name == "postgresql":
            shop.paid_order(paid_at=START)  # committed after it
        read_all_into(con, db, {"channel": shop.channel}, reads)
    assert con.execute("SELECT p.n, o.n FROM p, o").fetchall() == [(1, 1)]


def test_a_postgresql_url_reaches_libpq_whole(shop: Shop, ledger_engine: Engine) -> None:
    """A password with a space (the server trusts us: any password will do) and `options`
    with one, as psycopg takes them; a failure never shows the password."""
    if ledger_engine.dialect.name != "postgresql":
        pytest.skip("libpq's")
    shop.paid_order(paid_at=START)
    url = ledger_engine.url.set(password="s3cret pass#?%20").update_query_dict(
        {"options": "-c statement_timeout=5000"}
    )
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        assert _count(engine, shop) == 1
    finally:
        engine.dispose()
    with pytest.raises(adbc_driver_manager.Error) as refused:
        _open(url.set(database="no_such_db"), postgres=True)
    assert "no_such_db" in str(refused.value) and "s3cret" not in str(refused.value)


def test_a_sqlite_file_uri_is_read(shop: Shop, ledger_engine: Engine) -> None:
    """db.engine takes `sqlite:///file:...?uri=true` (SQLite's URI, its own parameters)."""
    if ledger_engine.dialect.name != "sqlite":
        pytest.skip("SQLite's")
    shop.paid_order(paid_at=START)
    engine = make_engine(f"sqlite:///file:{ledger_engine.url.database}?uri=true&cache=private")
    try:
        assert _count(engine, shop) == 1
    finally:
        engine.dispose()


def test_a_sqlite_database_in_memory_is_refused_plainly() -> None:
    engine = make_engine("sqlite://")
    try:
        with engine.connect() as db, pytest.raises(ValueError, match="in memory"):
            read_into(duckdb.connect(), "n", db, "SELECT 1", {}, {"n": "BIGINT"})
    finally:
        engine.dispose()


def test_a_parameter_is_a_value_never_sql(shop: Shop, ledger_engine: Engine) -> None:
    """PostgreSQL's values are written into the query (so the driver can COPY): quoted by
    psycopg, a quote in one stays in the value."""
    shop.paid_order(paid_at=START)
    con = duckdb.connect()
    query = "SELECT count(*) FROM payments WHERE channel = :channel AND status = :status"
    sneaky = {"channel": "x' OR '1'='1", "status": "paid' OR '1'='1"}
    with ledger_engine.connect() as db:
        read_into(con, "n", db, query, sneaky, {"n": "BIGINT"})
        read_into(con, "m", db, query, {"channel": shop.channel, "status": "paid"}, {"m": "BIGINT"})
    assert con.execute("SELECT n, m FROM n, m").fetchall() == [(0, 1)]


@pytest.mark.parametrize(
    "text",
    [
        "AND 'note :channel' IS NOT NULL",  # a string
        "AND E'it\\'s :channel' IS NOT NULL",  # PostgreSQL's escape string
        "AND $$ :channel $$ IS NOT NULL",  # and its dollar quoting
        "-- :channel\n",  # a comment
        "/* :channel */",
    ],
)
def test_a_name_in_quoted_text_or_a_comment_is_text(
    text: str, shop: Shop, ledger_engine: Engine
) -> None:
    """Only a `:name` in the query's own SQL is a parameter: one inside a string or a
    comment is left as written. (A value written into a comment ends it at its newline and
    runs as SQL; one written into a string ends the string.)"""
    if ("$$" in text or "E'" in text) and ledger_engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's quoting")
    shop.paid_order(paid_at=START)
    shop.paid_order(paid_at=START)
    con = duckdb.connect()
    query = f"SELECT count(*) FROM payments WHERE channel = :channel {text}"
    with ledger_engine.connect() as db:
        read_into(con, "n", db, query, {"channel": "x\n OR true --"}, {"n": "BIGINT"})
        read_into(con, "m", db, query, {"channel": shop.channel}, {"m": "BIGINT"})
    assert con.execute("SELECT n, m FROM n, m").fetchall() == [(0, 2)]
