"""A query's rows from our database straight into a DuckDB table, in columns.

The reconciliation reads a whole channel-day of our payments (a million rows on a busy
day) to join them with the channel's bill. Through the DB-API every value becomes a
Python object and then text for DuckDB to parse again; here the database's ADBC driver
(Apache Arrow's: SQLite through its C library, PostgreSQL through a binary COPY) hands
Arrow batches to DuckDB, and Python never touches a row.

The read runs on a connection of its own. On PostgreSQL it reads the caller's snapshot
(exported, then imported into its own repeatable-read transaction), so it agrees with
whatever else the caller reads in its transaction (db.engine.read_one_snapshot). SQLite
cannot share a snapshot between connections: there it sees what was committed when it
starts. SQLite's file is opened read-only; a database in memory has no file to open.

The connection's parameters reach libpq as a key=value string (quoted by psycopg), never
as a URL: a URL with a space in its password is refused by libpq with the password in
its message, and `options=-c a=b` would reach it as `-c+a=b`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import adbc_driver_manager
import adbc_driver_postgresql
import adbc_driver_sqlite
import duckdb
import psycopg
import psycopg.sql
from psycopg.conninfo import make_conninfo
from sqlalchemy import URL, Connection

from db.times import as_utc

# `:name` as SQLAlchemy's text() finds it (not `arr[1:2]`, nor PostgreSQL's `::type`), in
# the query's own SQL only: text inside a string ('...', E'...', $tag$...$tag$), a quoted
# identifier or a comment is matched as `text` and left as written. (On PostgreSQL a value
# is written into the query: inside a string or a comment it would end it and run as SQL.)
_NAMED = re.compile(
    r"(?P<text>(?<!\w)[eE]'(?:[^'\\]|\\.|'')*'"
    r"|'(?:[^']|'')*'"
    r"|\"(?:[^\"]|\"\")*\""
    r"|\$(?P<tag>(?:[A-Za-z_]\w*)?)\$[\s\S]*?\$(?P=tag)\$"
    r"|--[^\n]*"
    r"|/\*[\s\S]*?\*/"
    r"|::)"
    r"|(?<![:\w]):(?P<name>\w+)"
)


def _marked(query: str, mark: Callable[[str], str]) -> tuple[str, list[str]]:
    """The query with each `:name` replaced by `mark(name)`, and the names in order."""
    names: list[str] = []

    def replace(found: re.Match[str]) -> str:
        name = found.group("name")
        if name is None:
            return found.group(0)
        names.append(name)
        return mark(name)

    return _NAMED.sub(replace, query), names


# Rows per Arrow batch from SQLite: the driver's default (1,024) makes a million-row read
# 0.29 s, 16,384 makes it 0.25 s (the bench's day: 4,096 0.26 s, 65,536 0.27 s).
_ROWS = "16384"


@dataclass(frozen=True)
class ArrowRead:
    """One query's rows into a DuckDB table: its columns, in order, named and cast to
    DuckDB's types as `columns` says."""

    table: str
    query: str
    columns: Mapping[str, str]


def read_into(
    con: duckdb.DuckDBPyConnection,
    table: str,
    db: Connection,
    query: str,
    params: Mapping[str, Any],
    columns: Mapping[str, str],
) -> None:
    """Create `table` in `con` from `query`'s rows on `db`'s database: its columns, in
    order, named and cast to DuckDB's types as `columns` says."""
    read_all_into(con, db, params, [ArrowRead(table, query, columns)])


def read_all_into(
    con: duckdb.DuckDBPyConnection,
    db: Connection,
    params: Mapping[str, Any],
    reads: Sequence[ArrowRead],
) -> None:
    """Each read's table in `con`, one after the other on one connection of ours (on
    PostgreSQL in one transaction, of the caller's snapshot): a connection is opened once
    (on PostgreSQL a server process started and the snapshot imported), not once a
    query."""
    postgres = db.dialect.name == "postgresql"
    # The caller's snapshot, taken (if it was not yet) before our connection opens.
    snapshot = db.exec_driver_sql("SELECT pg_export_snapshot()").scalar() if postgres else None
    with ExitStack() as opened:  # closed in reverse, whichever step fails
        database = opened.enter_context(closing(_open(db.engine.url, postgres)))
        options = {"adbc.connection.autocommit": "false"} if postgres else {}
        connection = adbc_driver_manager.AdbcConnection(database, **options)
        opened.enter_context(closing(connection))
        if snapshot is not None:
            with closing(adbc_driver_manager.AdbcStatement(connection)) as statement:
                statement.set_sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                statement.execute_update()
                statement.set_sql_query(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                statement.execute_update()
        for read in reads:
            _read_one(con, db, connection, read, params)


def _read_one(
    con: duckdb.DuckDBPyConnection,
    db: Connection,
    connection: adbc_driver_manager.AdbcConnection,
    read: ArrowRead,
    params: Mapping[str, Any],
) -> None:
    if db.dialect.name == "postgresql":  # the values in the text: the driver reads by COPY
        sql, values = _with_literals(db, read.query, params), []
    else:
        sql, names = _marked(read.query, lambda _: "?")
        values = [_sqlite_value(params[name]) for name in names]
    with (
        closing(adbc_driver_manager.AdbcStatement(connection)) as statement,
        con.cursor() as binder,
    ):
        statement.set_sql_query(sql)
        if db.dialect.name == "sqlite":
            statement.set_options(**{adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value: _ROWS})
        if values:  # the parameters' one row, from a cursor of its own
            marks_sql = ", ".join(f"${i} AS p{i}" for i in range(1, len(values) + 1))
            statement.bind_stream(binder.sql(f"SELECT {marks_sql}", params=values))
        stream, _ = statement.execute_query()
        rows = con.from_arrow(stream)
        typed = ", ".join(
            f'CAST("{got}" AS {kind}) AS "{name}"'
            for got, (name, kind) in zip(rows.columns, read.columns.items(), strict=True)
        )
        rows.project(typed).create(read.table)


def _with_literals(db: Connection, query: str, params: Mapping[str, Any]) -> str:
    """The query with each parameter written in as PostgreSQL's literal, quoted by psycopg
    for this connection. ADBC's PostgreSQL driver streams a query without parameters by
    a binary COPY; with them, row by row: 0.47 against 0.26 s for the bench's day."""
    raw = db.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    sql, _ = _marked(query, lambda name: psycopg.sql.Literal(params[name]).as_string(raw))
    return sql


def _open(url: URL, postgres: bool) -> adbc_driver_manager.AdbcDatabase:
    if postgres:
        database: adbc_driver_manager.AdbcDatabase = adbc_driver_postgresql.connect(_libpq(url))
        return database
    return adbc_driver_sqlite.connect(_sqlite_uri(url))


def _libpq(url: URL) -> str:
    """The URL's connection parameters as libpq's key=value string, each value quoted."""
    given: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }
    for key, value in url.query.items():  # sslmode, host=/socket/dir, options, ...
        given[key] = ",".join(value) if isinstance(value, tuple) else value
    return make_conninfo("", **{k: v for k, v in given.items() if v is not None})


# pysqlite's own arguments in a SQLite URL, not SQLite's URI parameters.
_PYSQLITE = {"uri", "timeout", "check_same_thread", "isolation_level", "detect_types"}
_PYSQLITE |= {"cached_statements", "factory", "autocommit"}


def _sqlite_uri(url: URL) -> str:
    """The URL's database file as a read-only SQLite URI: a path as SQLAlchemy opens it
    (relative to the working directory), or a `file:` URI (`?uri=true`) with its own
    parameters."""
    path = url.database or ""
    uri = url.query.get("uri") == "true" and path.startswith("file:")
    query = {k: v for k, v in url.query.items() if k not in _PYSQLITE} if uri else {}
    if not path or ":memory:" in path or query.get("mode") == "memory":
        raise ValueError("a SQLite database in memory cannot be read by another connection")
    target = path if uri else "file:" + quote(path, safe="/")
    return target + "?" + urlencode({**query, "mode": "ro"}, doseq=True)


def _sqlite_value(value: Any) -> Any:
    """A parameter as SQLite compares it: it holds instants as SQLAlchemy's text (naive
    UTC), so an instant is bound as that text."""
    if isinstance(value, datetime):
        return as_utc(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
