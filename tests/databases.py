"""A PostgreSQL database of its own for each test process.

`TEST_DATABASE_URL` names a server and a database we may connect to; each pytest
process (each xdist worker) creates a fresh database beside it, named after the run
and the worker, and drops it when the session ends. Workers never see each other's
rows, nor do two runs side by side (two checkouts, say).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from functools import cache
from pathlib import Path

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from db.engine import make_engine
from db.migrate import upgrade_to_head


def database_name() -> str:
    """`paysaga_test_{run}_{worker}`: the run as xdist names it (or a fresh one), the worker
    `gw0`, `gw1`, ... (or `main` without xdist)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or secrets.token_hex(4)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"paysaga_test_{run[:8].lower()}_{worker}"


def _admin_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(url: str, name: str) -> str:
    """A new empty database `name` on `url`'s server; returns its URL."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"not a plain database name: {name!r}")
    with psycopg.connect(_admin_dsn(url), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(_admin_dsn(url), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def migrated_engine(url: str) -> Engine:
    """An engine on `url` once its schema is at head, as `make run` leaves it. A new SQLite
    file starts as a copy of one the migrations made once this session (migrating from
    nothing costs 0.3 s of CPU; most test modules make a database of their own)."""
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
    if path and not Path(path).exists():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_sqlite_at_head(), path)
    upgrade_to_head(url)  # a no-op on the copy; the real upgrade anywhere else
    return make_engine(url)


@cache
def _sqlite_at_head() -> Path:
    path = Path(tempfile.mkdtemp(prefix="paysaga-template-")) / "paysaga.db"
    upgrade_to_head(f"sqlite:///{path}")  # its engine is disposed: the WAL is folded in
    return path
