"""Bring a database to the newest schema: Alembic's `upgrade head`, run once before the
worker and the API start (`make run`, the deployable stack's migration job, the tests).

A database made before there were migrations (by `create_all`) has paysaga's tables but
no `alembic_version`. It is recognised by comparing its tables and columns with what the
baseline revision creates, stamped at the baseline, then upgraded: in place, its rows
kept. Anything else that holds some of our tables is refused, with what differs.

On PostgreSQL a transaction-scoped advisory lock serialises upgrades, so replicas that
start together take turns: the first upgrades, the others find the work done.

On SQLite a revision that adds a constraint rebuilds the table (Alembic's batch mode:
copy, drop, rename). Foreign keys are off while it runs, as SQLite's own procedure for
such changes says (dropping a parent table would otherwise fail, or cascade), and
`PRAGMA foreign_key_check` must find nothing before the transaction commits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text

from db.engine import make_engine, normalise_url

BASELINE = "0001_baseline"
MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK = 0x7061797361676121  # any constant that no other application uses: "paysaga!"


class UnknownSchema(RuntimeError):
    """The database holds tables of ours that no revision made: it is not upgraded."""


class BrokenReferences(RuntimeError):
    """After a migration on SQLite, rows refer to rows that do not exist: not committed."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade_to_head(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection, migration_transaction(connection):
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
            config = alembic_config(url)
            config.attributes["connection"] = connection
            if _needs_adoption(connection):
                command.stamp(config, BASELINE)
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def schema_at_head(connection: Connection) -> bool:
    """True when the database's revision is the newest the code knows. (Read directly:
    a MigrationContext would log two lines per readiness probe.)"""
    if not inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return list(versions) == [_HEAD]


@contextmanager
def migration_transaction(connection: Connection) -> Iterator[None]:
    """One transaction for the migrations; on SQLite with foreign keys off until it ends,
    and their check before it commits."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:  # a no-op inside a transaction: set it before ours begins
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    try:
        with connection.begin():
            yield
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise BrokenReferences(f"rows refer to missing rows: {broken[:10]}")
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def _needs_adoption(connection: Connection) -> bool:
    """True for a database `create_all` made; raises for one holding other tables of ours."""
    found = _columns(connection)
    if "alembic_version" in found:
        return False
    baseline = _baseline_columns()
    ours = set(found) & set(baseline)
    if not ours:
        return False  # an empty database (or someone else's tables only): create ours
    differences = [
        f"{table}: missing {sorted(baseline[table] - found.get(table, set()))}"
        for table in sorted(baseline)
        if baseline[table] - found.get(table, set())
    ]
    if differences:
        raise UnknownSchema(
            "the database has paysaga tables but not the baseline's schema, so it was not "
            f"upgraded ({'; '.join(differences)}); restore a backup made by a known version"
        )
    return True


def _columns(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {
        table: {column["name"] for column in inspector.get_columns(table)}
        for table in inspector.get_table_names()
    }


def _baseline_columns() -> dict[str, set[str]]:
    """The tables and columns the baseline revision creates, read off a scratch database."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as connection:
            config = alembic_config("sqlite://")
            config.attributes["connection"] = connection
            command.upgrade(config, BASELINE)
            columns = _columns(connection)
    finally:
        scratch.dispose()
    columns.pop("alembic_version", None)
    return columns


_HEAD = head_revision()


def main() -> None:
    """`python -m db.migrate`: the deployable stack's migration job, run before the rest."""
    url = os.environ.get("PAYSAGA_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set PAYSAGA_DATABASE_URL (or DATABASE_URL) to the database to upgrade")
    try:
        upgrade_to_head(url)
    except UnknownSchema as error:
        raise SystemExit(f"not upgraded: {error}") from None
    print(f"database at revision {current_revision(url)}")


if __name__ == "__main__":
    main()
