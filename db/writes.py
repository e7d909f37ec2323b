"""Idempotent write helpers shared by every activity."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


def insert_ignore(session: Session, model: type[SQLModel], values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was new.

    A conflict leaves the transaction usable on both databases, unlike catching
    an IntegrityError, which aborts a PostgreSQL transaction.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model.__table__).values(**values).on_conflict_do_nothing()  # type: ignore[attr-defined]
    # SQLAlchemy keeps an INSERT's rowcount only when asked; psycopg otherwise reports -1.
    result = session.execute(statement, execution_options={"preserve_rowcount": True})
    inserted: int = result.rowcount  # type: ignore[attr-defined]
    return inserted == 1
