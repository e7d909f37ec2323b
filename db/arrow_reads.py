"""A query's rows from our database straight into a DuckDB table, in columns.

The reconciliation reads a whole channel-day of our payments (a million rows on a busy
day) to join them with the channel's bill. Through the DB-API every value becomes a
Python object and then text for DuckDB to parse again; here the database's ADBC driver
(Apache Arrow's: SQLite through its C library, PostgreSQL through a binary COPY) hands
Arrow batches to DuckDB, and Python never touches a row.

The read runs on a connection of its own, not the caller's session: it sees what was
committed when it starts, which is all the caller's session could see of a past day.
SQLite's file is opened read-only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql
import adbc_driver_sqlite
import duckdb
from sqlalchemy import URL, Connection

from db.times import as_utc

# `:name`, SQLAlchemy's text() style, but not PostgreSQL's `::type` cast.
_NAMED = re.compile(r"(?<!:):(\w+)")


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
    postgres = db.dialect.name == "postgresql"
    names = _NAMED.findall(query)
    marks = iter(range(1, len(names) + 1))
    sql = _NAMED.sub(lambda _: f"${next(marks)}" if postgres else "?", query)
    values = [_bound(params[name], db) for name in names]
    database = _open(db.engine.url, postgres)
    try:
        connection = adbc_driver_manager.AdbcConnection(database)
        statement = adbc_driver_manager.AdbcStatement(connection)
        binder = con.cursor()  # the parameters' one row, in a result of its own
        try:
            statement.set_sql_query(sql)
            if values:
                marks_sql = ", ".join(f"${i} AS p{i}" for i in range(1, len(values) + 1))
                statement.bind_stream(binder.sql(f"SELECT {marks_sql}", params=values))
            stream, _ = statement.execute_query()
            rows = con.from_arrow(stream)
            typed = ", ".join(
                f'CAST("{got}" AS {kind}) AS "{name}"'
                for got, (name, kind) in zip(rows.columns, columns.items(), strict=True)
            )
            rows.project(typed).create(table)
        finally:
            binder.close()
            statement.close()
            connection.close()
    finally:
        database.close()


def _open(url: URL, postgres: bool) -> adbc_driver_manager.AdbcDatabase:
    if postgres:
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        database: adbc_driver_manager.AdbcDatabase = adbc_driver_postgresql.connect(libpq)
        return database
    return adbc_driver_sqlite.connect(f"file:{url.database}?mode=ro")


def _bound(value: Any, db: Connection) -> Any:
    """A parameter as the database compares it: SQLite holds instants as SQLAlchemy's text
    (naive UTC), so an instant is bound as that text."""
    if isinstance(value, datetime) and db.dialect.name == "sqlite":
        return as_utc(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
