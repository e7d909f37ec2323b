"""Revision 0012 on a database whose books went through a paid payout: every row is kept,
`payout_conversions` arrives empty (the payouts before were paid in their own currency),
and a payout made after the upgrade for a merchant settled in another currency gets its
row; a downgrade drops the table and keeps the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from db.engine import make_engine
from db.migrate import alembic_config, current_revision, upgrade_to_head
from db.order_money import release_funds
from db.settlement import payout_conversion, prepare_statement, statement_payout
from db.tables import Merchant
from tests.db.books import fill_books
from tests.db.test_migrations import HEAD, _row_counts, fresh_url  # noqa: F401  (the fixture)

BEFORE = "0011_channel_sweeps"


def test_payout_conversions_arrive_empty_beside_the_kept_payouts(fresh_url: str) -> None:  # noqa: F811
    command.upgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    books = fill_books(engine)
    engine.dispose()
    before = _row_counts(fresh_url)
    assert before["payouts"] == 1

    upgrade_to_head(fresh_url)

    assert current_revision(fresh_url) == HEAD
    assert _row_counts(fresh_url) == before  # the new table is empty
    engine = make_engine(fresh_url)
    try:
        with Session(engine) as session:
            assert payout_conversion(session, books.payout_id) is None
        order_id = books.shop.paid_order()
        with Session(engine) as session, session.begin():
            release_funds(session, order_id)
        with Session(engine) as session, session.begin():
            session.get_one(Merchant, books.shop.merchant_id).settlement_currency = "USD"
        later = datetime.now(UTC).date() + timedelta(days=2)
        with Session(engine) as session, session.begin():
            statement = prepare_statement(
                session, books.shop.merchant_id, books.shop.currency, later, datetime.now(UTC)
            )
            assert statement is not None
            payout = statement_payout(session, statement)
            assert payout is not None
            conversion = payout_conversion(session, payout.id)
            assert conversion is not None
            assert (conversion.currency, conversion.credit_currency) == ("CNY", "USD")
            assert conversion.credited_amount is None
    finally:
        engine.dispose()

    command.downgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            tables = connection.dialect.get_table_names(connection)
            payouts = connection.execute(text("SELECT count(*) FROM payouts")).scalar_one()
    finally:
        engine.dispose()
    assert "payout_conversions" not in tables
    assert payouts == 2
