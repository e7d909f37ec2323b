"""A buyer's whole journey, and what the others see of it: nothing.

Buyer A registers, signs in, orders with a coupon, modifies the order, pays, confirms
receipt and reviews; their notifications tell the story. Buyer B and merchant B, signed
in beside them, find none of it: every read answers 404 or an empty list.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.conftest import System
from tests.identities import Buyer, Merchant, client_as, merchant_with_key, register_buyer
from tests.support import order_body, pay, wait_for


async def _order(client: httpx.AsyncClient, merchant_id: str, **overrides: Any) -> httpx.Response:
    return await client.post(
        "/v1/orders",
        json=order_body(merchant_id, **overrides),
        headers={"Idempotency-Key": secrets.token_hex(8)},
    )


async def _status(client: httpx.AsyncClient, order_id: str, status: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        return dict((await client.get(f"/v1/orders/{order_id}")).json())

    return await wait_for(read, lambda order: order.get("status") == status, f"order {status}")


async def _coupon(api: httpx.AsyncClient) -> str:
    code = f"JOURNEY{secrets.token_hex(3)}"
    body = {"code": code, "kind": "fixed", "amount_off": 500, "currency": "CNY"}
    response = await api.post(
        "/v1/coupons", json={**body, "max_redemptions": 10, "per_buyer_limit": 1}
    )
    assert response.status_code == 201, response.text
    return code


async def test_a_buyer_orders_modifies_pays_and_reviews_and_nobody_else_sees_it(
    system: System,
    api: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
) -> None:
    buyer_a: Buyer = await register_buyer(system, anonymous)
    buyer_b: Buyer = await register_buyer(system, anonymous)
    merchant_a: Merchant = await merchant_with_key(api)
    merchant_b: Merchant = await merchant_with_key(api)
    code = await _coupon(api)
    async with client_as(system, buyer_a.headers) as as_a:
        placed = await _order(as_a, merchant_a.id, coupon_code=code)
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["amounts"] == {"total": 7498, "discount": 500, "payable": 6998}
        # The coupon allows one order per buyer.
        again = await _order(as_a, merchant_a.id, coupon_code=code)
        assert again.status_code == 400, again.text
        assert again.json()["error"]["code"] == "coupon_limit_reached"

        modified = await as_a.post(
            f"/v1/orders/{order['id']}/modify",
            json={
                "lines": [
                    {"sku": "tea-001", "name": "Oolong tea", "quantity": 3, "unit_amount": 1999}
                ]
            },
        )
        assert modified.status_code == 200, modified.text
        order = modified.json()
        assert order["amounts"] == {"total": 5997, "discount": 500, "payable": 5497}
        assert order["payment"]["attempt"] == 2  # the first payment was closed at the channel

        await pay(sandbox, order["payment"]["reference"])
        paid = await _status(as_a, order["id"], "completed")
        assert paid["payment"]["amount"] == 5497
        review = await as_a.post(
            f"/v1/orders/{order['id']}/review", json={"rating": 5, "text": "Lovely tea"}
        )
        assert review.status_code == 201, review.text
        notes = (await as_a.get("/v1/me/notifications")).json()["data"]
        assert "payment_succeeded" in {note["event"] for note in notes}

    reviews = (await anonymous.get(f"/v1/merchants/{merchant_a.id}/reviews")).json()
    assert [r["rating"] for r in reviews["data"]] == [5]

    order_id = order["id"]
    async with client_as(system, buyer_b.headers) as as_b:
        assert (await as_b.get(f"/v1/orders/{order_id}")).status_code == 404
        assert (await as_b.get(f"/v1/orders/{order_id}/refunds")).status_code == 404
        assert (await as_b.get("/v1/orders")).json()["data"] == []
        assert (await as_b.get("/v1/me/notifications")).json()["data"] == []
        review = await as_b.post(f"/v1/orders/{order_id}/review", json={"rating": 1})
        assert review.status_code == 404
        # Buyer B may still use the coupon: the limit is per buyer.
        assert (await _order(as_b, merchant_b.id, coupon_code=code)).status_code == 201
    async with client_as(system, merchant_b.headers) as as_merchant_b:
        assert (await as_merchant_b.get(f"/v1/orders/{order_id}")).status_code == 404
        assert order_id not in {
            o["id"] for o in (await as_merchant_b.get("/v1/orders")).json()["data"]
        }
        cancel = await as_merchant_b.post(f"/v1/orders/{order_id}/cancel")
        assert cancel.status_code == 404
    async with client_as(system, merchant_a.headers) as as_merchant_a:
        assert (await as_merchant_a.get(f"/v1/orders/{order_id}")).json()["status"] == "completed"
