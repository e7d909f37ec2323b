"""The issue's walk-through, as a person does it on `make run`: an overseas shop prices in
HKD; its Chinese buyer pays at the Alipay cashier page, which shows the HKD price and the
CNY charged; the order shows the quote-free channel conversion (CNY charged, Alipay's
rate); half is refunded; the merchant is settled; the statement and the FX report add up.

Each step goes through the API or the sandbox over HTTP, as README's "Cross-border"
section tells a person to. One backend is enough (PostgreSQL when there is one): the
database is not what this proves.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.fx.conversion import convert
from tests.conftest import BACKENDS, System
from tests.pages.support import signed_in_staff
from tests.support import (
    create_order,
    get_order,
    http_client,
    merchant_body,
    refund_done,
    wait_for,
    wait_status,
)

pytestmark = pytest.mark.parametrize("system", [BACKENDS[-1]], indirect=True)

PRICE = 7498  # HKD 74.98: the standard test order's lines


async def _pay_at_the_cashier(system: System, checkout_url: str) -> tuple[int, Decimal]:
    """Open Alipay's page as the buyer, read the two figures, press Pay; the CNY charged
    (fen) and the rate the page showed."""
    async with http_client(follow_redirects=True) as browser:
        page = await browser.get(checkout_url)
        assert page.status_code == 200, page.text
        assert re.search(r'class="amount">74\.98 HKD<', page.text), page.text
        charged = re.search(r'class="payer-amount">(\d+)\.(\d{2}) CNY<', page.text)
        rate = re.search(r"1 HKD = ([0-9.]+) CNY", page.text)
        assert charged is not None and rate is not None, page.text
        [action] = re.findall(r'<form method="post" action="([^"]+/pay)"', page.text)
        paid = await browser.post(f"{system.sandbox_url}{action}")
        assert paid.status_code == 200, paid.text
        assert "Payment received" in paid.text
    return int(charged[1]) * 100 + int(charged[2]), Decimal(rate[1])


async def _statement(api: httpx.AsyncClient, merchant_id: str) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    started = await api.post(f"/v1/merchants/{merchant_id}/settlements", json={"day": today})
    assert started.status_code == 202, started.text

    async def listed() -> list[dict[str, Any]]:
        page = await api.get(f"/v1/merchants/{merchant_id}/statements")
        assert page.status_code == 200, page.text
        return list(page.json()["data"])

    [statement] = await wait_for(listed, lambda data: len(data) == 1, "the statement")
    detail = await api.get(f"/v1/statements/{statement['id']}")
    assert detail.status_code == 200, detail.text

    async def paid_out() -> dict[str, Any]:
        return dict((await api.get(f"/v1/statements/{statement['id']}")).json())

    return await wait_for(
        paid_out, lambda s: s["payout"] is not None and s["payout"]["status"] == "paid", "payout"
    )


async def test_an_hkd_order_paid_in_cny_at_alipay_refunded_half_settles_and_adds_up(
    api: httpx.AsyncClient, system: System
) -> None:
    # An overseas shop (Hong Kong) that prices and is settled in HKD.
    made = await api.post("/v1/merchants", json=merchant_body(settlement_currency="HKD"))
    assert made.status_code == 201, made.text
    merchant_id = made.json()["id"]
    order = await create_order(
        api, merchant_id, channel="alipay", currency="HKD", auto_complete_seconds=3600
    )
    assert order["quote"] is None  # the channel converts, not we: no quote of ours
    assert (order["payment"]["amount"], order["payment"]["currency"]) == (PRICE, "HKD")

    charged, shown_rate = await _pay_at_the_cashier(system, order["payment"]["checkout_url"])
    # The one rounding rule, at the rate the page showed, gives the CNY it showed.
    assert convert(PRICE, "HKD", "CNY", shown_rate).target_amount == charged

    await wait_status(api, order["id"], "awaiting_receipt")
    received = await api.post(f"/v1/orders/{order['id']}/confirm-receipt")
    assert received.status_code == 200, received.text
    paid = await wait_status(api, order["id"], "completed")
    [conversion] = paid["channel_conversions"]
    assert conversion["kind"] == "payment"
    assert (conversion["price_amount"], conversion["price_currency"]) == (PRICE, "HKD")
    assert (conversion["payer_amount"], conversion["payer_currency"]) == (charged, "CNY")
    assert Decimal(conversion["channel_rate"]) == shown_rate
    split = paid["split"]
    # The merchant's staff see the same on the order's page.
    staff = await signed_in_staff(api, system.api_url, merchant_id)
    view = await staff.get(f"/dashboard/orders/{order['id']}")
    assert view.status_code == 200, view.text
    shown = f"{charged // 100}.{charged % 100:02d}"
    assert re.search(rf'class="conversion">[^<]*{re.escape(shown)}', view.text), view.text
    assert f"1 HKD = {conversion['channel_rate']} CNY" in view.text

    half = PRICE // 2
    refund = await refund_done(api, order["id"], half)
    assert (refund["amount"], refund["currency"]) == (half, "HKD")
    after = await get_order(api, order["id"])
    assert after["refunded_amount"] == half
    [_, given_back] = after["channel_conversions"]
    assert given_back["kind"] == "refund" and given_back["refund_id"] == refund["id"]
    assert given_back["price_amount"] == half and given_back["payer_currency"] == "CNY"
    assert given_back["payer_amount"] == (
        convert(half, "HKD", "CNY", Decimal(given_back["channel_rate"])).target_amount
    )

    statement = await _statement(api, merchant_id)
    assert statement["currency"] == "HKD"
    [line] = statement["orders"]
    assert line["order_id"] == order["id"] and line["gross"] == PRICE
    assert (line["channel_fee"], line["commission"]) == (split["channel_fee"], split["commission"])
    assert line["fx"] == {
        "presentment_amount": charged,
        "presentment_currency": "CNY",
        "customer_rate": conversion["channel_rate"],
        "markup_bps": 0,
        "converted_by": "channel",
    }
    # The statement adds up: opening + gross - fee - commission - refunded = payout.
    totals = (
        statement["opening_balance"]
        + statement["gross_amount"]
        - statement["channel_fee_amount"]
        - statement["commission_amount"]
        - statement["refunded_amount"]
        + statement["returned_amount"]
        - statement["clawback_amount"]
        - statement["payout_amount"]
    )
    assert totals == statement["closing_balance"] == 0
    assert statement["payout"]["amount"] == statement["payout_amount"]
    assert statement["payout"]["currency"] == "HKD"

    day = datetime.now(UTC).date().isoformat()
    report = await api.get(
        "/v1/fx/report", params={"day": day, "channel": "alipay", "merchant_id": merchant_id}
    )
    assert report.status_code == 200, report.text
    assert report.json()["lines"] == []  # nothing of ours converted: no gain, no loss
    [wallet] = report.json()["channel_conversions"]
    assert (wallet["channel"], wallet["price_currency"], wallet["payer_currency"]) == (
        "alipay",
        "HKD",
        "CNY",
    )
    assert (wallet["payments"], wallet["refunds"], wallet["fx_exposure"]) == (1, 1, 0)
    # The report's price side is the statement's gross and the order's refund; its CNY
    # side is what the buyer was charged and given back.
    assert wallet["price_paid"] == statement["gross_amount"]
    assert wallet["price_refunded"] == after["refunded_amount"]
    assert (wallet["payer_paid"], wallet["payer_refunded"]) == (
        charged,
        given_back["payer_amount"],
    )
