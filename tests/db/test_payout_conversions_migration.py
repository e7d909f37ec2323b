"""Revisions 0012 and 0013 on a database whose books went through a paid payout and whose
merchant has FX terms: every row is kept, `payout_conversions` arrives empty (the payouts
before were paid in their own currency), the terms keep their figures and read as
before (any price currency, payouts not converted), and a payout made after the upgrade
for a merchant that opts in gets its row; a downgrade drops both and keeps the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import inspect, text
from sqlmodel import Session

from db.engine import make_engine
from db.migrate import alembic_config, current_revision, upgrade_to_head
from db.order_money import release_funds
from db.settlement import payout_conversion, prepare_statement, statement_payout
from db.tables import Merchant, MerchantFxTerms
from tests.db.books import fill_books
from tests.db.test_migrations import HEAD, _row_counts, fresh_url  # noqa: F401  (the fixture)

BEFORE = "0011_channel_sweeps"


def test_payout_conversions_arrive_empty_beside_the_kept_payouts(fresh_url: str) -> None:  # noqa: F811
    command.upgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    books = fill_books(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO merchant_fx_terms (merchant_id, fx_markup_bps, buyer_countries)"
                " VALUES (:merchant, 50, 'US,JP')"
            ),
            {"merchant": books.shop.merchant_id},
        )
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
            terms = session.get_one(MerchantFxTerms, books.shop.merchant_id)
            assert (terms.fx_markup_bps, terms.buyer_countries) == (50, "US,JP")
            assert (terms.price_currencies, terms.convert_payouts) == (None, False)
        order_id = books.shop.paid_order()
        with Session(engine) as session, session.begin():
            release_funds(session, order_id)
        with Session(engine) as session, session.begin():
            session.get_one(Merchant, books.shop.merchant_id).settlement_currency = "USD"
            session.get_one(MerchantFxTerms, books.shop.merchant_id).convert_payouts = True
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
            kept = connection.execute(
                text("SELECT fx_markup_bps, buyer_countries FROM merchant_fx_terms")
            ).all()
            columns = {c["name"] for c in inspect(connection).get_columns("merchant_fx_terms")}
    finally:
        engine.dispose()
    assert "payout_conversions" not in tables
    assert payouts == 2
    assert [tuple(row) for row in kept] == [(50, "US,JP")]
    assert {"price_currencies", "convert_payouts"}.isdisjoint(columns)
