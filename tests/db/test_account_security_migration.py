"""Revision 0004 on a database with accounts in it: every user is kept, at token
version 0, and the new tables start empty; a downgrade keeps every user too."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from db.engine import make_engine
from db.migrate import alembic_config, current_revision, upgrade_to_head
from tests.db.conftest import new_buyer
from tests.db.test_migrations import HEAD, fresh_url  # noqa: F401  (the fixture)

BEFORE = "0003_constraints"


def _users(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, email FROM users")).all()
    finally:
        engine.dispose()
    return {row.id: row.email for row in rows}


def test_users_upgrade_to_token_version_zero_and_downgrade_kept(fresh_url: str) -> None:  # noqa: F811
    command.upgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    buyers = {new_buyer(engine) for _ in range(3)}
    engine.dispose()
    before = _users(fresh_url)
    assert set(before) == buyers

    upgrade_to_head(fresh_url)

    assert current_revision(fresh_url) == HEAD
    assert _users(fresh_url) == before
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT DISTINCT token_version FROM users"))
            assert versions.scalars().all() == [0]
            for table in ("registrations", "outbound_messages"):
                count = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                assert count == 0, table
    finally:
        engine.dispose()

    command.downgrade(alembic_config(fresh_url), BEFORE)
    assert _users(fresh_url) == before
