"""What the bank credited for a converted payout, recorded by `record_credit`: once, only
for a paid payout, and only when it answers what was asked; anything else leaves the
payout as recorded (our books are right whatever the bank credited) and is logged."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from db.order_money import release_funds
from db.settlement import (
    mark_payout_paid,
    mark_payout_returned,
    payout_conversion,
    prepare_statement,
    record_credit,
    statement_payout,
)
from db.tables import Merchant, MerchantFxTerms, Payout
from domain.settlement import PayoutCredit
from tests.db.conftest import Shop

USD = PayoutCredit(currency="USD", amount=1_000, rate="0.138")


def _converted_payout(shop: Shop, convert: bool = True) -> str:
    """A pending CNY payout of a merchant settled in USD (converted if it opted in)."""
    order_id = shop.paid_order()
    with Session(shop.engine) as session, session.begin():
        release_funds(session, order_id)
        session.get_one(Merchant, shop.merchant_id).settlement_currency = "USD"
        session.add(MerchantFxTerms(merchant_id=shop.merchant_id, convert_payouts=convert))
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    with Session(shop.engine) as session, session.begin():
        statement = prepare_statement(session, shop.merchant_id, "CNY", tomorrow, datetime.now(UTC))
        assert statement is not None
        payout = statement_payout(session, statement)
        assert payout is not None
        return payout.id


def _credit(shop: Shop, payout_id: str) -> tuple[int | None, str | None] | None:
    with Session(shop.engine) as session:
        conversion = payout_conversion(session, payout_id)
        return None if conversion is None else (conversion.credited_amount, conversion.credit_rate)


def test_the_first_report_of_a_paid_payout_stands(shop: Shop) -> None:
    payout_id = _converted_payout(shop)
    assert _credit(shop, payout_id) == (None, None)
    with Session(shop.engine) as session, session.begin():
        mark_payout_paid(session, payout_id, "bank-1")
        record_credit(session, payout_id, USD)
    with Session(shop.engine) as session, session.begin():
        record_credit(session, payout_id, USD.model_copy(update={"amount": 999}))
    assert _credit(shop, payout_id) == (1_000, "0.138")


def test_a_payout_refused_first_keeps_no_credit(shop: Shop) -> None:
    payout_id = _converted_payout(shop)
    with Session(shop.engine) as session, session.begin():
        mark_payout_returned(session, payout_id, "account_frozen")
    with Session(shop.engine) as session, session.begin():
        mark_payout_paid(session, payout_id, "bank-late")  # the first outcome stands
        record_credit(session, payout_id, USD)
        assert session.get_one(Payout, payout_id).status == "failed"
    assert _credit(shop, payout_id) == (None, None)


@pytest.mark.parametrize(
    ("convert", "reported"),
    [(True, None), (True, USD.model_copy(update={"currency": "EUR"})), (False, USD)],
    ids=["asked_none_reported", "another_currency", "not_asked"],
)
def test_a_report_that_answers_another_question_is_logged_not_recorded(
    shop: Shop, convert: bool, reported: PayoutCredit | None, caplog: pytest.LogCaptureFixture
) -> None:
    payout_id = _converted_payout(shop, convert)
    logged = caplog.at_level(logging.ERROR, "db.settlement")
    with logged, Session(shop.engine) as session, session.begin():
        mark_payout_paid(session, payout_id, "bank-1")
        record_credit(session, payout_id, reported)
        assert session.get_one(Payout, payout_id).status == "paid"
    assert _credit(shop, payout_id) in (None, (None, None))
    ours = [r for r in caplog.records if r.name == "db.settlement"]
    assert [r.payout_id for r in ours] == [payout_id]  # type: ignore[attr-defined]
