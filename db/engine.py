"""Engines and sessions for SQLite (default) and PostgreSQL.

SQLite runs in WAL mode and every writing transaction starts with `BEGIN IMMEDIATE`:
SQLite has one writer, and taking the write lock up front turns a
read-then-write race (coupon reservation, ledger posting) into a short wait
instead of a `database is locked` failure half-way through a transaction.
Sessions that only read (`read_session_factory`) begin deferred: in WAL mode a
reader sees its snapshot while a writer works, and neither waits for the other.
PostgreSQL uses row locks (`SELECT ... FOR UPDATE`) where we read-then-write.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, make_url
from sqlmodel import Session, create_engine

from db import identity, staff, tables  # noqa: F401  (registers the tables on SQLModel.metadata)

SessionFactory = Callable[[], Session]

# An execution option on the engine of read sessions: their transactions begin deferred.
_READ_ONLY = "paysaga_read_only"
# How long a SQLite connection waits for another's write lock before `database is locked`.
_BUSY_SECONDS = 30


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain `postgresql://` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, pool_size: int = 10, pool_overflow: int = 20) -> Engine:
    """An engine keeping up to `pool_size` connections open, opening up to `pool_overflow`
    more that are closed after use (settings.DatabasePool: the API's and the worker's)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, pool_size, pool_overflow)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_overflow,
        hide_parameters=True,
    )


def _sqlite_engine(url: str, pool_size: int, pool_overflow: int) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:" and not path.startswith("file:"):
        keep_private(Path(path))
    in_memory = not path or path == ":memory:" or "mode=memory" in url
    # A database in memory lives in one connection (SQLAlchemy's SingletonThreadPool).
    pool = {} if in_memory else {"pool_size": pool_size, "max_overflow": pool_overflow}
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": _BUSY_SECONDS},
        hide_parameters=True,
        **pool,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        _enter_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _enter_wal(cursor: Any) -> None:
    """Switch the database to WAL. On a new file opened by several connections at once
    SQLite can answer this switch `database is locked` at once, without waiting out the
    busy timeout (seen 2 in 300 with three threads): retry it for as long as that timeout."""
    deadline = time.monotonic() + _BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def keep_private(database: Path) -> None:
    """The database file, and SQLite's journals beside it, readable by this user only.

    It holds accounts, password hashes and payments. A new file is made 0600 before
    SQLite opens it (its folder 0700 when we make that too); SQLite gives the -wal and
    -shm files it makes the database file's mode. Files an earlier version left
    readable by others are narrowed here, on every start.
    """
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
        if file.exists():
            with contextlib.suppress(PermissionError):  # another user's file: theirs to mind
                file.chmod(0o600)


def read_one_snapshot(session: Session) -> None:
    """Make every query of the session read the same snapshot.

    PostgreSQL's default (read committed) lets each statement see newer commits, so
    sums and balances read one after the other could disagree. SQLite needs nothing:
    in WAL mode a transaction reads one snapshot from its first read to its end.
    Must run before the session's first query.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def session_factory(engine: Engine) -> SessionFactory:
    def open_session() -> Session:
        return Session(engine, expire_on_commit=False)

    return open_session


def read_session_factory(engine: Engine) -> SessionFactory:
    """Sessions for reading only: on SQLite they take no write lock, so a page of orders
    never waits behind a ledger posting (nor holds one up). Never write through them."""
    readers = engine.execution_options(**{_READ_ONLY: True})

    def open_session() -> Session:
        return Session(readers, expire_on_commit=False)

    return open_session
