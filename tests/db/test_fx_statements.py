"""A merchant's statement shows each quoted order's FX line, on SQLite and PostgreSQL:
the buyer's amount and currency at the quoted rate beside the merchant's own figures,
which stay in its currency and add up as for any order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from api.services.ledger_views import statement_detail
from db.order_money import release_funds
from db.settlement import prepare_statement
from tests.db.conftest import Shop
from tests.db.fx_orders import quoted_paid_order


def test_a_statement_shows_the_fx_line_of_a_quoted_order(shop: Shop) -> None:
    quoted_id, quote = quoted_paid_order(shop, "USD", price=20_000)
    plain_id = shop.paid_order()
    with Session(shop.engine) as session, session.begin():
        release_funds(session, quoted_id)
        release_funds(session, plain_id)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        statement = prepare_statement(session, shop.merchant_id, "CNY", tomorrow, datetime.now(UTC))
    assert statement is not None
    with Session(shop.engine) as session:
        detail = statement_detail(session, statement.id)
    lines = {line.order_id: line for line in detail.orders}
    fx = lines[quoted_id].fx
    assert fx is not None
    assert (fx.presentment_amount, fx.presentment_currency) == (quote.presentment_amount, "USD")
    assert fx.customer_rate == str(quote.customer_rate) and fx.markup_bps == quote.markup_bps
    assert lines[quoted_id].gross == 20_000  # the merchant's figures in its own currency
    assert lines[plain_id].fx is None
    released = sum(line.released for line in detail.orders)
    others = sum(entry.amount for entry in detail.entries)
    assert detail.opening_balance + released + others == detail.closing_balance
