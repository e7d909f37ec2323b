"""Idempotent write helpers shared by every activity."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


def insert_ignore(session: Session, model: type[SQLModel], values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was new.

    A conflict leaves the transaction usable on both databases, unlike catching
    an IntegrityError, which aborts a PostgreSQL transaction.
    """
    table: Table = model.__table__  # type: ignore[attr-defined]
    statement = _ignoring_conflicts(session.get_bind().dialect.name, table)
    # SQLAlchemy keeps an INSERT's rowcount only when asked; psycopg otherwise reports -1.
    result = session.execute(statement, values, execution_options={"preserve_rowcount": True})
    inserted: int = result.rowcount  # type: ignore[attr-defined]
    return inserted == 1


def insert_all_ignore(
    session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]
) -> None:
    """`insert_ignore` of several rows in one execution (an executemany, in their order);
    those already there stay as they are. No rows, no statement (an empty executemany
    would be one INSERT of the table's defaults)."""
    if not rows:
        return
    table: Table = model.__table__  # type: ignore[attr-defined]
    session.execute(_ignoring_conflicts(session.get_bind().dialect.name, table), rows)


@cache
def _ignoring_conflicts(dialect: str, table: Table) -> Insert:
    """Built once per table (see db.payments); the values come with each execution."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()
