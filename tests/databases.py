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
    """An engine on `url` once its schema is at head, as `make run` leaves it."""
    upgrade_to_head(url)
    return make_engine(url)
