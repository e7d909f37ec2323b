"""A PostgreSQL database of its own for each test process.

`TEST_DATABASE_URL` names a server and a database we may connect to; each pytest
process (each xdist worker) creates a fresh database beside it, named after the
worker, and drops it when the session ends. Workers never see each other's rows,
and a crashed run leaves nothing that the next run reads: a leftover of the same
name is dropped first.
"""

from __future__ import annotations

import os
import re

import psycopg
from sqlalchemy.engine import make_url


def worker_name() -> str:
    """`gw0`, `gw1`, ... under xdist; `main` without it."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _admin_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(url: str, name: str) -> str:
    """A new empty database `name` on `url`'s server; returns its URL."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"not a plain database name: {name!r}")
    with psycopg.connect(_admin_dsn(url), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(_admin_dsn(url), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
