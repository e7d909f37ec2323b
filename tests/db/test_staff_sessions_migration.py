"""Revision 0005 on a database with accounts and merchants in it: every row is kept, the
staff and session tables start empty and take rows; a downgrade keeps every user."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from api.auth.staff import authenticate_staff, create_merchant_user
from db.engine import make_engine
from db.migrate import alembic_config, current_revision, upgrade_to_head
from db.tables import Merchant
from tests.db.conftest import new_buyer
from tests.db.test_migrations import HEAD, fresh_url  # noqa: F401  (the fixture)

BEFORE = "0004_account_security"


def test_staff_tables_arrive_empty_beside_the_kept_rows(fresh_url: str) -> None:  # noqa: F811
    command.upgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    buyer = new_buyer(engine)
    merchant_id = f"mer_{secrets.token_hex(6)}"
    stamp = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO merchants (id, name, commission_rate, status, created_at, updated_at)"
                " VALUES (:id, 'Tea', '0.05', 'active', :at, :at)"
            ),
            {"id": merchant_id, "at": stamp},
        )
    engine.dispose()

    upgrade_to_head(fresh_url)

    assert current_revision(fresh_url) == HEAD
    engine = make_engine(fresh_url)
    try:
        with Session(engine) as session:
            assert session.get(Merchant, merchant_id) is not None
            for table in ("merchant_users", "web_sessions"):
                count = session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                assert count == 0, table
            owner = create_merchant_user(session, merchant_id, "Owner@Tea.example", "x" * 12, stamp)
            second = create_merchant_user(session, merchant_id, "b@tea.example", "y" * 12, stamp)
            session.commit()
            assert (owner.is_owner, second.is_owner) == (True, False)
            assert authenticate_staff(session, "owner@tea.example", "x" * 12, stamp) is not None
    finally:
        engine.dispose()

    command.downgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            users = connection.execute(text("SELECT id FROM users")).scalars().all()
    finally:
        engine.dispose()
    assert buyer in users
