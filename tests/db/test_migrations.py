"""Alembic owns the schema: the migrations make exactly the models' tables, a database
made before migrations (by `create_all`) is adopted in place with every row kept, and
replicas upgrading at once take turns. On SQLite and PostgreSQL, each a fresh database.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
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
from db.settlement import covered_entry_ids
from db.tables import Statement
from tests.databases import create_database, database_name, drop_database, migrated_engine
from tests.db.books import fill_books
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
    """The rows of each of our tables that holds any. A table the database does not have
    yet (a later revision makes it) holds none, as does an empty one: so an upgrade that
    adds tables keeps the counts equal, and one that loses a table's rows does not."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            present = set(inspect(connection).get_table_names())
            counts = {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in SQLModel.metadata.sorted_tables
                if table.name in present
            }
    finally:
        engine.dispose()
    return {name: count for name, count in counts.items() if count}


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


def _sound(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return ledger_problems(session)
    finally:
        engine.dispose()


def test_money_at_the_baseline_upgrades_with_every_row(fresh_url: str) -> None:
    """Orders paid, refunded, settled into a statement and paid out, written while the
    database was at the baseline: the constraints fit them, and nothing is lost."""
    command.upgrade(alembic_config(fresh_url), BASELINE)
    engine = make_engine(fresh_url)
    fill_books(engine)
    engine.dispose()
    before = _row_counts(fresh_url)
    assert all(before[table] for table in ("refunds", "statements", "payouts", "reviews"))

    upgrade_to_head(fresh_url)

    assert current_revision(fresh_url) == HEAD
    assert _row_counts(fresh_url) == before
    assert _sound(fresh_url) == []


def test_a_downgrade_to_the_baseline_keeps_every_row_but_earlier_payment_attempts(
    fresh_url: str,
) -> None:
    engine = migrated_engine(fresh_url)
    books = fill_books(engine)
    with engine.begin() as connection:  # the open order modified once: two attempts
        connection.execute(
            text("UPDATE payments SET status = 'closed' WHERE order_id = :id"),
            {"id": books.open_order_id},
        )
        connection.execute(
            text(
                "INSERT INTO payments (order_id, channel, attempt, status, amount, currency,"
                " updated_at) SELECT order_id, channel, 2, 'pending', amount, currency,"
                " updated_at FROM payments WHERE order_id = :id"
            ),
            {"id": books.open_order_id},
        )
    with Session(engine) as session:  # a range since 0016; listed a row each before it
        statement = session.get_one(Statement, books.statement_id)
        covered = len(session.execute(covered_entry_ids(statement)).all())
    engine.dispose()
    before = _row_counts(fresh_url)

    command.downgrade(alembic_config(fresh_url), BASELINE)

    lost_attempt = {"payments": before["payments"] - 1}
    assert _row_counts(fresh_url) == {**before, **lost_attempt, "statement_entries": covered}
    assert _sound(fresh_url) == []
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            kept = connection.execute(
                text("SELECT attempt, status FROM payments WHERE order_id = :id"),
                {"id": books.open_order_id},
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in kept] == [(2, "pending")]  # the latest, as before 0002


def test_rows_that_break_a_new_constraint_stop_the_upgrade_and_change_nothing(
    fresh_url: str,
) -> None:
    command.upgrade(alembic_config(fresh_url), BASELINE)
    engine = make_engine(fresh_url)
    books = fill_books(engine)
    with engine.begin() as connection:  # what a bug could have left: a refund of no order
        connection.execute(
            text("UPDATE refunds SET order_id = 'ord_gone' WHERE id = :id"),
            {"id": books.refund_id},
        )
    engine.dispose()
    before = _row_counts(fresh_url)

    with pytest.raises(RuntimeError, match=r"fk_refunds_order: 1 row\(s\) of refunds"):
        upgrade_to_head(fresh_url)

    assert current_revision(fresh_url) == BASELINE
    assert _row_counts(fresh_url) == before


def test_a_schema_no_revision_made_is_refused_and_left_alone(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    SQLModel.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE payout_conversions"))  # it references payouts
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


def test_the_migration_job_upgrades_the_database_it_is_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'job.db'}"
    env = {**os.environ, "PAYSAGA_DATABASE_URL": url}
    job = subprocess.run(
        [sys.executable, "-m", "db.migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert job.returncode == 0, job.stderr
    assert job.stdout.strip() == f"database at revision {HEAD}"
    assert current_revision(url) == HEAD
