"""Revision 0009 on a database with money in it: every row is kept and the books still
reconcile; the cross-border tables arrive empty and take a quoted order paid in USD;
a downgrade to 0007 drops them and keeps every other row."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from db.engine import make_engine
from db.migrate import alembic_config, current_revision, upgrade_to_head
from db.reconcile import ledger_problems
from tests.db.books import fill_books
from tests.db.conftest import Shop, open_shop
from tests.db.fx_orders import quoted_paid_order
from tests.db.test_migrations import HEAD, _row_counts, fresh_url  # noqa: F401  (the fixture)

BEFORE = "0008_reconciliation"
NEW_TABLES = ("merchant_fx_terms", "order_quotes", "quoted_refunds", "fx_realisations")


def _count(url: str, table: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_cross_border_tables_arrive_empty_beside_the_kept_books(fresh_url: str) -> None:  # noqa: F811
    command.upgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    fill_books(engine)
    engine.dispose()
    before = _row_counts(fresh_url)

    upgrade_to_head(fresh_url)

    assert current_revision(fresh_url) == HEAD
    assert _row_counts(fresh_url) == before
    assert all(_count(fresh_url, table) == 0 for table in NEW_TABLES)
    engine = make_engine(fresh_url)
    try:
        shop: Shop = open_shop(engine)
        quoted_paid_order(shop, "USD")
        with Session(engine) as session:
            assert ledger_problems(session) == []
    finally:
        engine.dispose()
    assert _count(fresh_url, "order_quotes") == 1

    command.downgrade(alembic_config(fresh_url), BEFORE)
    assert current_revision(fresh_url) == BEFORE
    after = _row_counts(fresh_url)
    assert all(after.get(table, 0) >= count for table, count in before.items())
