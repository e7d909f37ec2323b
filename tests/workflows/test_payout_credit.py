"""A merchant settled in another currency than its orders' (issue 17): its statement stays
in the orders' currency and so do our books; the bank converts the payout at its own rate,
and what it credited is kept with the payout and shown with the statement."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from sqlmodel import Session

from db.ledger import account_balance
from db.reconcile import Scope, ledger_problems
from db.settlement import payout_conversion
from domain.fx.conversion import convert
from domain.ledger import PLATFORM, AccountKind, account_id
from tests.conftest import System
from tests.support import create_order, merchant_body, merchant_payout, pay, wait_status


async def _merchant_settled_in(api: httpx.AsyncClient, currency: str, convert: bool) -> str:
    response = await api.post("/v1/merchants", json=merchant_body(settlement_currency=currency))
    assert response.status_code == 201, response.text
    merchant_id = str(response.json()["id"])
    terms = {"fx_markup_bps": 0, "convert_payouts": convert}
    answer = await api.put(f"/v1/merchants/{merchant_id}/fx-terms", json=terms)
    assert answer.status_code == 200 and answer.json()["convert_payouts"] is convert
    return merchant_id


@pytest.mark.parametrize("settled_by", ["merchant_route", "daily_run"])
async def test_a_cny_shop_settled_in_usd_is_paid_out_converted_by_the_bank(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, settled_by: str
) -> None:
    """Settled alone (its own route) or by the day's run (which prepares a page of
    merchants at once): either way the payout asks the bank to convert."""
    merchant_id = await _merchant_settled_in(api, "USD", convert=True)
    orders = [await create_order(api, merchant_id) for _ in range(2)]
    for order in orders:
        await pay(sandbox, order["id"])
    for order in orders:
        await wait_status(api, order["id"], "completed")
    with Session(system.engine) as session:
        bank_before = account_balance(session, account_id(AccountKind.BANK, PLATFORM, "CNY"))

    today = datetime.now(UTC).date().isoformat()
    if settled_by == "daily_run":
        body = {"day": today, "merchant_ids": [merchant_id]}
        settled = await api.post("/v1/settlements/runs", json=body)
    else:
        settled = await api.post(f"/v1/merchants/{merchant_id}/settlements", json={"day": today})
    assert settled.status_code == 202, settled.text
    payout = await merchant_payout(system.engine, merchant_id)

    # Our side moved CNY, as for any payout; the bank turned it into USD at its rate.
    with Session(system.engine) as session:
        credit = payout_conversion(session, payout.id)
    assert credit is not None and payout.currency == "CNY"
    assert (credit.currency, credit.credit_currency) == ("CNY", "USD")
    assert credit.credit_rate is not None and credit.credited_amount is not None
    rate = Decimal(credit.credit_rate)
    assert Decimal("0.12") < rate < Decimal("0.15")
    assert credit.credited_amount == convert(payout.amount, "CNY", "USD", rate).target_amount
    with Session(system.engine) as session:
        bank_after = account_balance(session, account_id(AccountKind.BANK, PLATFORM, "CNY"))
        scope = Scope(order_ids=[o["id"] for o in orders], accounts=[], merchant_ids=[merchant_id])
        assert ledger_problems(session, scope) == []
    assert bank_after == bank_before - payout.amount

    statement = (await api.get(f"/v1/statements/{payout.statement_id}")).json()
    assert statement["currency"] == "CNY" and statement["payout_amount"] == payout.amount
    shown = statement["payout"]
    assert (shown["credit_currency"], shown["credited_amount"], shown["credit_rate"]) == (
        "USD",
        credit.credited_amount,
        credit.credit_rate,
    )
    assert (await api.get(f"/v1/payouts/{payout.id}")).json()["credited_amount"] == (
        credit.credited_amount
    )


@pytest.mark.parametrize(
    ("settled_in", "convert"), [("CNY", True), ("USD", False)], ids=["same", "not_asked"]
)
async def test_a_payout_is_paid_as_it_is_unless_asked_and_needed(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    settled_in: str,
    convert: bool,
) -> None:
    """Settled in its orders' currency, or in another but not asked to convert (every
    merchant before this, whose recorded settlement currency was never acted on)."""
    merchant_id = await _merchant_settled_in(api, settled_in, convert)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")

    settled = await api.post(
        f"/v1/merchants/{merchant_id}/settlements",
        json={"day": datetime.now(UTC).date().isoformat()},
    )
    assert settled.status_code == 202, settled.text
    payout = await merchant_payout(system.engine, merchant_id)
    with Session(system.engine) as session:
        assert payout_conversion(session, payout.id) is None
    shown = (await api.get(f"/v1/payouts/{payout.id}")).json()
    assert (shown["credit_currency"], shown["credited_amount"]) == (None, None)
