"""How Alembic reaches the database: the URL from db.migrate (or the settings' database
URL from the environment, for the `alembic` command), our tables' metadata to compare
against, and batch mode on SQLite (which cannot ALTER most things in place)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

from db.engine import make_engine, normalise_url  # registers every table on the metadata
from db.migrate import migration_transaction

config = context.config


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "PAYSAGA_DATABASE_URL", os.environ.get("DATABASE_URL", "sqlite:///var/paysaga.db")
    )
    return normalise_url(url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=SQLModel.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:  # db.migrate hands us its connection (and its lock)
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection, migration_transaction(connection):
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
