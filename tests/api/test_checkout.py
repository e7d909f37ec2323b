"""The hosted checkout over plain HTTP: a shop places an order without a channel, the
buyer opens the link it got, chooses WeChat Pay, switches to card, and a stale payment
of the WeChat Pay attempt is given back. Runs on both databases (the choice is stored).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from urllib.parse import urlsplit

import httpx
import pytest

from db.tables import Refund
from domain.checkout import return_url_refusal
from tests.api.test_orders import assert_nothing_stored
from tests.conftest import System
from tests.pages.support import Browser
from tests.support import (
    create_merchant,
    create_order,
    get_order,
    order_body,
    order_refunds,
    pay,
    scraped,
    wait_for,
)

SHOP = "https://shop.example.com/thanks"


async def _choose(buyer: Browser, link: str, channel: str) -> httpx.Response:
    path, token = link.split("?t=")
    return await buyer.post(f"{path}/method", {"t": token, "channel": channel})


async def test_a_buyer_chooses_switches_and_a_payment_to_the_closed_attempt_is_refunded(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel=None, return_url=SHOP)
    assert (order["status"], order["channel"], order["payment"]) == ("awaiting_payment", None, None)
    assert order["return_url"] == SHOP
    link = urlsplit(order["checkout_url"])
    assert link.path == f"/checkout/{order['id']}" and link.query.startswith("t=")
    buyer = Browser(system.api_url)
    path = f"{link.path}?{link.query}"

    # Only the link's own token opens the page: an order id alone gets a 404.
    assert (await buyer.get(link.path)).status_code == 404
    assert (await buyer.get(f"{link.path}?t={secrets.token_urlsafe(32)}")).status_code == 404
    assert (await buyer.get(f"{link.path}/status?t=nope")).status_code == 404
    page = await buyer.get(path)
    assert page.status_code == 200 and "Oolong" in page.text
    assert 'value="wechatpay"' in page.text and 'value="card"' in page.text

    chosen = await _choose(buyer, path, "wechatpay")
    assert chosen.status_code == 303, chosen.text
    page = await buyer.get(path)
    assert re.search(r"<svg[^>]*class=\"qr\"", page.text), "no QR code on the page"
    status = (await buyer.get(f"{link.path}/status?{link.query}")).json()
    assert status == {"state": "pay", "attempt": 1, "final": False}

    assert (await _choose(buyer, path, "card")).status_code == 303
    answer = await api.get(f"/v1/orders/{order['id']}/payments")
    first, second = answer.json()["data"]
    assert (first["channel"], first["status"]) == ("wechatpay", "closed")
    assert (second["channel"], second["status"], second["attempt"]) == ("card", "pending", 2)
    assert (await get_order(api, order["id"]))["channel"] == "card"
    # The channel closed it too: its cashier no longer takes the payment.
    async with httpx.AsyncClient() as client:
        cashier = await client.get(first["checkout_url"])
    assert "closed" in cashier.text
    # The cashier shows the shop and the goods, not our ids.
    assert "Test shop - Oolong tea \u00d72, Tea cup" in cashier.text
    assert order["id"] not in cashier.text

    # A stale QR code paid anyway: the money goes back at WeChat Pay.
    await pay(sandbox, first["reference"], force=True)
    [refund] = await wait_for(
        lambda: _wait_refunds(system, order["id"]),
        lambda refunds: len(refunds) == 1 and refunds[0].status == "succeeded",
        "the closed attempt's payment to be refunded",
    )
    assert (refund.reason, refund.channel, refund.amount) == ("late_payment", "wechatpay", 7498)

    await pay(sandbox, second["reference"])
    status = await wait_for(
        lambda: _status(buyer, f"{link.path}/status?{link.query}"),
        lambda now: now["state"] == "paid",
        "the checkout to show the receipt",
    )
    assert status["final"] is True


async def test_the_pages_status_request_waits_for_the_order_to_change(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    """The page's script tells what it shows and waits (static/checkout.js): the answer
    comes when the order changes (its lines, its payment), at once when the page shows
    another state or the order's pages hold their share of waits, and a bad wait is
    refused."""
    order = await create_order(api, await create_merchant(api), payment_timeout_seconds=120)
    link = urlsplit(order["checkout_url"])
    status = f"{link.path}/status?{link.query}"
    buyer = Browser(system.api_url)
    assert await _status(buyer, status) == {"state": "pay", "attempt": 1, "final": False}

    # Showing another state (say a tab opened before the method was chosen): no wait, so
    # an answer under the client's limit, itself under the 20 s asked.
    behind = await buyer.request("GET", f"{status}&state=choose&attempt=0&wait=20", timeout=10)
    assert behind.json() == {"state": "pay", "attempt": 1, "final": False}

    # The shop changes the lines in another window: the status stays, the page's attempt
    # does not, and the waiting page is told before its wait ends.
    waiting = asyncio.create_task(buyer.get(f"{status}&state=pay&attempt=1&wait=20"))
    await _until_waiting(system, 1)
    assert not waiting.done()
    lines = [{"sku": "tea", "name": "Tea", "quantity": 3, "unit_amount": 1999}]
    modified = await api.post(f"/v1/orders/{order['id']}/modify", json={"lines": lines})
    assert modified.status_code == 200, modified.text
    answer = await asyncio.wait_for(waiting, timeout=15)
    assert answer.json() == {"state": "pay", "attempt": 2, "final": False}

    # One order's pages hold at most PAYSAGA_CHECKOUT_WAIT_PER_ORDER (5) waits: the next is
    # answered at once, unchanged, and its page asks again after a pause.
    shown = f"{status}&state=pay&attempt=2&wait=20"
    held = [asyncio.create_task(buyer.get(shown)) for _ in range(5)]
    await _until_waiting(system, 5)
    extra = await buyer.request("GET", shown, timeout=10)
    assert extra.json() == {"state": "pay", "attempt": 2, "final": False}
    assert not any(task.done() for task in held)

    await pay(sandbox, (await get_order(api, order["id"]))["payment"]["reference"])
    answers = await asyncio.wait_for(asyncio.gather(*held), timeout=15)
    assert {answer.json()["state"] for answer in answers} == {"paid"}
    await _until_waiting(system, 0)

    for wait in ("-1", "31", "soon"):
        refused = await buyer.get(f"{status}&state=pay&attempt=1&wait={wait}")
        assert 400 <= refused.status_code < 500, (wait, refused.status_code)


async def _until_waiting(system: System, count: int) -> None:
    await wait_for(
        lambda: scraped(f"{system.api_url}/metrics", "paysaga_order_status_waiters"),
        lambda waiting: waiting == count,
        f"{count} requests waiting",
    )


async def _wait_refunds(system: System, order_id: str) -> list[Refund]:
    return order_refunds(system.engine, order_id)


async def _status(buyer: Browser, path: str) -> dict[str, object]:
    return dict((await buyer.get(path)).json())


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,hi", "ftp://shop.example.com/", "https://"]
)
async def test_a_bad_return_url_is_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, system: System, url: str
) -> None:
    merchant_id = await create_merchant(api)
    key = f"test-{secrets.token_hex(8)}"
    body = order_body(merchant_id, channel=None, return_url=url)
    response = await api.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "return_url_invalid"
    assert response.json()["error"]["param"] == "return_url"
    assert_nothing_stored(system, merchant_id, key)


def test_return_urls_are_https_outside_development() -> None:
    assert return_url_refusal("http://shop.example.com/", allow_http=False) is not None
    assert return_url_refusal("http://shop.example.com/", allow_http=True) is None
    assert return_url_refusal("https://user:pw@shop.example.com/", allow_http=False) is not None
    assert return_url_refusal(SHOP, allow_http=False) is None
