"""Cross-border orders end to end: a CNY shop's order paid by card in USD or JPY at a
quote, refunded in part and then in full, through the real API, sagas, sandbox card
gateway and database. After each, the books reconcile in every currency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError

from db.fx_books import order_sums
from db.tables import OrderQuote, PresentmentRefund, Refund
from domain.keys import order_workflow_id
from domain.saga import MethodChoice
from tests.conftest import System
from tests.pages.support import Browser
from tests.support import (
    assert_ledger_sound,
    create_merchant,
    create_order,
    get_order,
    ledger_mark,
    merchant_body,
    pay,
    post_refund,
    refund_done,
    wait_for,
    wait_status,
)
from workflows.order.workflow import OrderWorkflow


def _order_sums(system: System, order_id: str) -> dict[str, int]:
    with Session(system.engine) as session:
        return {account: total for account, total in order_sums(session, order_id).items() if total}


@pytest.mark.parametrize("presentment", ["USD", "JPY"])
async def test_a_cny_order_paid_by_card_abroad_is_refunded_in_the_buyers_currency(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, presentment: str
) -> None:
    mark = ledger_mark(system.engine)
    merchant_id = await create_merchant(api)
    terms = await api.put(f"/v1/merchants/{merchant_id}/fx-terms", json={"fx_markup_bps": 200})
    assert terms.status_code == 200, terms.text
    order = await create_order(api, merchant_id, channel="card", presentment_currency=presentment)
    quote = order["quote"]
    assert (quote["price_amount"], quote["price_currency"]) == (7498, "CNY")
    assert quote["presentment_currency"] == presentment and quote["markup_bps"] == 200
    assert order["payment"]["amount"] == quote["presentment_amount"]
    assert order["payment"]["currency"] == presentment
    # The quote outlives the payment window: every payment the saga takes pays it.
    expires = datetime.fromisoformat(quote["expires_at"])
    created = datetime.fromisoformat(order["created_at"])
    assert expires >= created + timedelta(seconds=60)

    await pay(sandbox, order["id"])
    paid = await wait_status(api, order["id"], "completed")
    assert paid["split"]["merchant_net"] > 0  # in CNY: the merchant's price, split

    await refund_done(api, order["id"], 2000)
    assert_ledger_sound(system.engine, mark)
    await refund_done(api, order["id"], 7498 - 2000)
    assert_ledger_sound(system.engine, mark)
    sums = _order_sums(system, order["id"])
    assert sums.get(f"fx_position:platform:{presentment}", 0) == 0
    assert sums.get("fx_position:platform:CNY", 0) == 0
    assert sums.get(f"channel_clearing:card:{presentment}", 0) == 0  # all given back
    final = await get_order(api, order["id"])
    assert final["quote"]["id"] == quote["id"]


async def test_cross_border_rules_are_clear_400s(api: httpx.AsyncClient) -> None:
    merchant_id = await create_merchant(api)
    unknown = {"fx_markup_bps": 100, "price_currencies": ["CNY", "XYZ"]}
    refused = await api.put(f"/v1/merchants/{merchant_id}/fx-terms", json=unknown)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "unknown_currency"
    assert refused.json()["error"]["param"] == "price_currencies"
    for listed_wrong in ([], ["CNY", "CNY"]):
        wrong = {"fx_markup_bps": 0, "price_currencies": listed_wrong}
        again = await api.put(f"/v1/merchants/{merchant_id}/fx-terms", json=wrong)
        assert again.status_code == 400, again.text
    terms = {"fx_markup_bps": 100, "buyer_countries": ["US", "JP"], "price_currencies": ["CNY"]}
    assert (await api.put(f"/v1/merchants/{merchant_id}/fx-terms", json=terms)).status_code == 200
    shown = (await api.get(f"/v1/merchants/{merchant_id}/fx-terms")).json()
    assert shown["price_currencies"] == ["CNY"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"channel": "alipay", "currency": "HKD"}, "currency_not_allowed"),
        (
            {"channel": "alipay", "presentment_currency": "KWD"},
            "presentment_currency_not_supported",
        ),
        # Alipay takes a USD *price*, but its buyer pays CNY: it cannot collect a USD quote.
        (
            {"channel": "alipay", "presentment_currency": "USD"},
            "presentment_currency_not_supported",
        ),
        ({"channel": None, "presentment_currency": "USD"}, "channel_required"),
        (
            {"channel": "card", "presentment_currency": "USD", "buyer_country": "FR"},
            "buyer_country_not_allowed",
        ),
        ({"channel": "card", "presentment_currency": "XYZ"}, "unknown_currency"),
        (
            {
                "channel": "card",
                "presentment_currency": "USD",
                "lines": [{"sku": "a", "name": "gold", "quantity": 1, "unit_amount": 90_000_000}],
            },
            "amount_over_limit",
        ),
    ]
    for overrides, code in cases:
        body: dict[str, Any] = {
            "merchant_id": merchant_id,
            "currency": "CNY",
            "lines": [{"sku": "tea", "name": "Tea", "quantity": 1, "unit_amount": 1000}],
            **overrides,
        }
        answer = await api.post(
            "/v1/orders", json=body, headers={"Idempotency-Key": f"{code}-{merchant_id}"}
        )
        assert answer.status_code == 400, (code, answer.text)
        assert answer.json()["error"]["code"] == code
    listed = await api.get("/v1/orders", params={"merchant_id": merchant_id})
    assert listed.status_code == 200 and listed.json()["data"] == []  # nothing was stored


async def test_a_quoted_buyer_is_offered_only_the_methods_that_collect_their_currency(
    api: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """A USD buyer of a CNY shop: the card charges USD; the wallets take CNY from their
    buyers only (a USD price they take, a USD payer they do not), so the hosted checkout
    offers the card alone and the saga refuses a switch to a wallet."""
    merchant_id = await create_merchant(api)
    buyer = Browser(system.api_url)
    # The page offers a card payer of the shop's own CNY a switch to the wallets...
    plain = urlsplit((await create_order(api, merchant_id, channel="card"))["checkout_url"])
    page = await buyer.get(f"{plain.path}?{plain.query}")
    assert 'value="alipay"' in page.text and 'value="wechatpay"' in page.text
    # ... and a USD payer none: the card it pays with is the only method that takes USD.
    order = await create_order(api, merchant_id, channel="card", presentment_currency="USD")
    link = urlsplit(order["checkout_url"])
    page = await buyer.get(f"{link.path}?{link.query}")
    assert page.status_code == 200 and "USD" in page.text
    assert 'value="alipay"' not in page.text and 'value="wechatpay"' not in page.text
    token = link.query.removeprefix("t=")
    refused = await buyer.post(f"{link.path}/method", {"t": token, "channel": "alipay"})
    assert "Choose one of the methods shown." in refused.text

    handle = temporal.get_workflow_handle(order_workflow_id(order["id"]))
    choice = MethodChoice(
        channel="alipay",
        channel_fee_rate=Decimal("0.006"),
        notify_url=f"{system.api_url}/v1/notify/alipay",
    )
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(OrderWorkflow.choose_method, choice)
    assert "alipay does not take USD" in str(failed.value.cause)
    current = await get_order(api, order["id"])
    assert current["channel"] == "card" and current["payment"]["currency"] == "USD"
    payments = (await api.get(f"/v1/orders/{order['id']}/payments")).json()["data"]
    assert [p["channel"] for p in payments] == ["card"]
    # The card stays the buyer's to use: choosing it again is no refusal.
    same = MethodChoice(
        channel="card",
        channel_fee_rate=Decimal("0.029"),
        notify_url=f"{system.api_url}/v1/notify/card",
    )
    await handle.execute_update(OrderWorkflow.choose_method, same)


async def test_a_payment_after_the_quote_expired_is_given_back_in_full_as_it_came(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    """A quoted order closes unpaid at its window; the buyer's USD arrives after the quote
    has run out as well. It is a late payment: given back whole, in USD, at no rate of
    ours (no FX position, no quote applied), and the order stays closed."""
    merchant_id = await create_merchant(api)
    order = await create_order(
        api, merchant_id, channel="card", presentment_currency="USD", payment_timeout_seconds=1
    )
    quote = order["quote"]
    await wait_status(api, order["id"], "closed")
    # The quote is on offer for the window plus a margin; rather than wait the margin out,
    # its stored offer is moved into the past: the payment below comes after its expiry.
    with Session(system.engine) as session, session.begin():
        row = session.exec(select(OrderQuote).where(OrderQuote.order_id == order["id"])).one()
        now = datetime.now(UTC)
        row.created_at, row.expires_at = now - timedelta(minutes=20), now - timedelta(seconds=1)
    # The gateway takes the buyer's money anyway (a page left open, say).
    await pay(sandbox, order["id"], force=True)

    def refunds() -> list[Refund]:
        with Session(system.engine) as session:
            return list(session.exec(select(Refund).where(Refund.order_id == order["id"])))

    async def settled() -> list[Refund]:
        return refunds()

    [refund] = await wait_for(
        settled, lambda r: len(r) == 1 and r[0].status == "succeeded", "the late payment back"
    )
    assert (refund.reason, refund.amount, refund.currency) == (
        "late_payment",
        quote["presentment_amount"],
        "USD",
    )
    with Session(system.engine) as session:
        assert session.get(PresentmentRefund, refund.id) is None  # not converted: as it came
    sums = _order_sums(system, order["id"])
    assert not [account for account in sums if account.startswith("fx_")]
    assert not [account for account in sums if account.endswith(":CNY")]
    assert sums.get("channel_clearing:card:USD", 0) == 0
    closed = await get_order(api, order["id"])
    assert (closed["status"], closed["close_reason"]) == ("closed", "payment_timeout")
    assert closed["split"] is None and closed["quote"]["id"] == quote["id"]


async def test_a_wechat_eur_order_keeps_the_cny_of_its_payment_and_of_a_late_confirmed_refund(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    """WeChat Pay converts a EUR price for its buyer: the CNY charged (`payer_amount`) and
    its `exchange_rate` stay with the order, and so does the CNY of a refund WeChat Pay
    confirms only later (pending first, then its notification or our query)."""
    made = await api.post("/v1/merchants", json=merchant_body(settlement_currency="EUR"))
    assert made.status_code == 201, made.text
    order = await create_order(
        api, made.json()["id"], channel="wechatpay", currency="EUR", auto_complete_seconds=3600
    )
    paid = await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "awaiting_receipt")
    [payment] = (await get_order(api, order["id"]))["channel_conversions"]
    assert (payment["kind"], payment["price_amount"], payment["price_currency"]) == (
        "payment",
        7498,
        "EUR",
    )
    assert (payment["payer_amount"], payment["payer_currency"]) == (paid["payer_amount"], "CNY")
    assert Decimal(payment["channel_rate"]) == Decimal(paid["channel_rate"])

    behaviour = {"mode": "pending"}
    assert (
        await sandbox.post(f"/control/refund-behaviour/{order['id']}", json=behaviour)
    ).status_code == 200
    asked = await post_refund(api, order["id"], amount=2000)
    assert asked.status_code == 201, asked.text
    refund_id = asked.json()["id"]
    completed = await wait_for(
        lambda: sandbox.post(f"/control/refunds/{refund_id}/complete"),
        lambda response: response.status_code == 200,
        "the pending refund at WeChat Pay",
    )
    done = await _refunded_already(api, refund_id)
    assert done["status"] == "succeeded"
    [_, given_back] = (await get_order(api, order["id"]))["channel_conversions"]
    assert (given_back["kind"], given_back["refund_id"], given_back["price_amount"]) == (
        "refund",
        refund_id,
        2000,
    )
    assert given_back["payer_amount"] == completed.json()["payer_amount"]


async def _refunded_already(api: httpx.AsyncClient, refund_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        return dict((await api.get(f"/v1/refunds/{refund_id}")).json())

    return await wait_for(read, lambda r: r["status"] == "succeeded", "the refund to succeed")
