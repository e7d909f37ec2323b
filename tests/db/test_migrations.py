"""Alembic owns the schema: the migrations make exactly the models' tables, a database
made before migrations (by `create_all`) is adopted in place with every row kept, and
replicas upgrading at once take turns. On SQLite and PostgreSQL, each a fresh database.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlmodel import Session, SQLModel

from db.engine import make_engine
from db.migrate import (
    BASELINE,
    UnknownSchema,
    alembic_config,
    current_revision,
    upgrade_to_head,
)
from db.reconcile import ledger_problems
from tests.databases import create_database, database_name, drop_database
from tests.db.conftest import BACKENDS, open_shop

HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, of its own (never the session's shared one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    server = os.environ["TEST_DATABASE_URL"]
    name = f"{database_name()}_{secrets.token_hex(3)}"
    yield create_database(server, name)
    drop_database(server, name)


def _row_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in SQLModel.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_the_migrations_make_exactly_the_models_tables(fresh_url: str) -> None:
    upgrade_to_head(fresh_url)
    assert current_revision(fresh_url) == HEAD
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection), SQLModel.metadata
            )
    finally:
        engine.dispose()
    assert differences == [], "models and migrations differ: add a revision"


def made_before_migrations(url: str) -> None:
    """The tables as every version before migrations made them: the baseline's, unstamped."""
    command.upgrade(alembic_config(url), BASELINE)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE alembic_version"))
    finally:
        engine.dispose()


def test_a_database_made_before_migrations_is_adopted_with_its_rows(fresh_url: str) -> None:
    made_before_migrations(fresh_url)
    engine = make_engine(fresh_url)
    shop = open_shop(engine)
    orders = [shop.paid_order() for _ in range(3)]
    engine.dispose()
    before = _row_counts(fresh_url)
    assert before["orders"] == 3 and before["postings"] > 0

    upgrade_to_head(fresh_url)
    upgrade_to_head(fresh_url)  # a second start finds nothing to do

    assert current_revision(fresh_url) == HEAD
    assert _row_counts(fresh_url) == before
    engine = make_engine(fresh_url)
    try:
        assert shop.ledger_problems(orders) == []
        with Session(engine) as session:
            assert ledger_problems(session) == []
    finally:
        engine.dispose()


def test_a_schema_no_revision_made_is_refused_and_left_alone(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    SQLModel.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE payouts"))
        connection.execute(text("CREATE TABLE payouts (id VARCHAR PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(UnknownSchema, match=r"payouts: missing \['amount'"):
        upgrade_to_head(fresh_url)
    assert current_revision(fresh_url) is None  # nothing stamped, nothing created
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            assert "alembic_version" not in inspect(connection).get_table_names()
    finally:
        engine.dispose()


def test_replicas_upgrading_at_once_take_turns(fresh_url: str) -> None:
    """PostgreSQL by its advisory lock; SQLite because each upgrade begins IMMEDIATE."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(upgrade_to_head, [fresh_url] * 3))
    assert current_revision(fresh_url) == HEAD


def test_the_baseline_downgrades_to_an_empty_database(fresh_url: str) -> None:
    upgrade_to_head(fresh_url)
    config = alembic_config(fresh_url)
    command.downgrade(config, "base")
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            assert inspect(connection).get_table_names() == ["alembic_version"]
    finally:
        engine.dispose()
