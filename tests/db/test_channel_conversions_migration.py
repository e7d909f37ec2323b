"""Revision 0010 on a database with money in it (cross-border orders included): every row
is kept and the books still reconcile; `channel_conversions` arrives empty and keeps what
a wallet reports for an order of a shop priced in HKD, once per key, and refuses a
"conversion" into the price's own currency; a downgrade to 0009 drops it and keeps every
other row."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from db.channel_conversions import (
    order_conversions,
    payment_conversion_id,
    record_conversion,
    refund_conversion_id,
)
from db.engine import make_engine
from db.migrate import alembic_config, current_revision, upgrade_to_head
from db.reconcile import ledger_problems
from db.tables import ChannelConversion
from tests.db.books import fill_books
from tests.db.conftest import Shop, open_shop
from tests.db.fx_orders import quoted_paid_order
from tests.db.test_migrations import HEAD, _row_counts, fresh_url  # noqa: F401  (the fixture)

BEFORE = "0009_cross_border"


def _count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM channel_conversions")
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def test_channel_conversions_arrive_empty_beside_the_kept_books(fresh_url: str) -> None:  # noqa: F811
    command.upgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    try:
        fill_books(engine)
        quoted_paid_order(open_shop(engine), "USD")  # revision 0009's own kind of data
    finally:
        engine.dispose()
    before = _row_counts(fresh_url)

    upgrade_to_head(fresh_url)

    assert current_revision(fresh_url) == HEAD
    assert _row_counts(fresh_url) == before
    assert _count(fresh_url) == 0
    engine = make_engine(fresh_url)
    try:
        shop: Shop = replace(open_shop(engine), currency="HKD")
        order_id = shop.paid_order()
        rate = Decimal("0.91734512")
        for _ in range(2):  # a repeated report is kept once
            with Session(engine) as session, session.begin():
                record_conversion(
                    session,
                    key=payment_conversion_id(order_id, 1),
                    order_id=order_id,
                    channel=shop.channel,
                    price=(7498, "HKD"),
                    payer=(6878, "CNY"),
                    channel_rate=rate,
                )
        with Session(engine) as session, session.begin():
            record_conversion(
                session,
                key=refund_conversion_id("rf_1"),
                order_id=order_id,
                channel=shop.channel,
                price=(3749, "HKD"),
                payer=(3441, "CNY"),
                channel_rate=Decimal("0.9178"),
                refund_id="rf_1",
            )
            # A price in the payer's own currency is no conversion: nothing is kept.
            assert (
                record_conversion(
                    session,
                    key="payment:domestic:1",
                    order_id=order_id,
                    channel=shop.channel,
                    price=(100, "CNY"),
                    payer=(100, "CNY"),
                    channel_rate=Decimal(1),
                )
                is None
            )
        with Session(engine) as session:
            rows = order_conversions(session, order_id)
            assert [(r.kind, r.price_amount, r.payer_amount) for r in rows] == [
                ("payment", 7498, 6878),
                ("refund", 3749, 3441),
            ]
            assert Decimal(rows[0].channel_rate) == rate  # exact, as the channel said
            assert ledger_problems(session) == []
        with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
            session.add(
                ChannelConversion(
                    id="bad",
                    order_id=order_id,
                    kind="payment",
                    channel=shop.channel,
                    price_currency="CNY",
                    price_amount=1,
                    payer_currency="CNY",
                    payer_amount=1,
                    channel_rate="1",
                    created_at=rows[0].created_at,
                )
            )
    finally:
        engine.dispose()
    assert _count(fresh_url) == 2

    command.downgrade(alembic_config(fresh_url), BEFORE)
    assert current_revision(fresh_url) == BEFORE
    after = _row_counts(fresh_url)
    assert all(after.get(table, 0) >= count for table, count in before.items())
