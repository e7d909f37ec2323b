"""The orders API as a shop uses it: validation, coupons, idempotency, reads, cancel.

Every refusal must leave nothing behind: no order row and no claimed Idempotency-Key,
so the shop can fix the request and send it again under the same key.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from db.tables import IdempotencyKey, JournalEntry, Order
from domain.money import MAX_ORDER_LINES, MAX_ORDER_TOTAL
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    get_order,
    merchant_body,
    order_body,
    wait_status,
)


def _key() -> str:
    return f"test-{secrets.token_hex(8)}"


def _line(**overrides: Any) -> dict[str, Any]:
    return {"sku": "tea-001", "name": "Oolong tea", "quantity": 1, "unit_amount": 1999} | overrides


def assert_error(response: httpx.Response, status: int, code: str, param: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param"}
    assert (error["code"], error["param"]) == (code, param), error


def _orders_of(system: System, merchant_id: str) -> list[str]:
    with Session(system.engine) as session:
        return list(session.exec(select(Order.id).where(Order.merchant_id == merchant_id)).all())


def _key_claimed(system: System, key: str) -> bool:
    with Session(system.engine) as session:
        return session.get(IdempotencyKey, key) is not None


def assert_nothing_stored(system: System, merchant_id: str, key: str) -> None:
    assert _orders_of(system, merchant_id) == []
    assert not _key_claimed(system, key)


async def _post(api: httpx.AsyncClient, body: dict[str, Any], key: str) -> httpx.Response:
    return await api.post("/v1/orders", json=body, headers={"Idempotency-Key": key})


# -- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code", "param"),
    [
        ({"lines": []}, "empty_order", "lines"),
        ({"lines": [_line(quantity=0)]}, "quantity_not_positive", "lines[0].quantity"),
        ({"lines": [_line(unit_amount=-1)]}, "amount_negative", "lines[0].unit_amount"),
        ({"lines": [_line(unit_amount=10.5)]}, "invalid_int_type", "lines[0].unit_amount"),
        ({"lines": [_line(unit_amount="100")]}, "invalid_int_type", "lines[0].unit_amount"),
        ({"currency": "XYZ"}, "unknown_currency", "currency"),
        ({"currency": "KWD"}, "currency_not_supported", "currency"),  # not on Alipay
        ({"lines": [_line(unit_amount=MAX_ORDER_TOTAL + 1)]}, "total_too_large", "lines"),
        ({"lines": [_line()] * (MAX_ORDER_LINES + 1)}, "too_many_lines", "lines"),
        ({"channel": "paypal"}, "invalid_enum", "channel"),
        ({"coupon_code": "NO-SUCH-COUPON"}, "coupon_not_found", "coupon_code"),
    ],
    ids=[
        "empty",
        "quantity-zero",
        "negative-amount",
        "fractional-amount",
        "string-amount",
        "unknown-currency",
        "currency-not-on-channel",
        "total-over-cap",
        "too-many-lines",
        "unknown-channel",
        "unknown-coupon",
    ],
)
async def test_an_invalid_order_is_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, system: System, overrides: dict[str, Any], code: str, param: str
) -> None:
    merchant_id = await create_merchant(api)
    key = _key()
    response = await _post(api, order_body(merchant_id, **overrides), key)
    assert_error(response, 400, code, param)
    assert_nothing_stored(system, merchant_id, key)


async def test_an_order_for_an_unknown_merchant_is_refused(
    api: httpx.AsyncClient, system: System
) -> None:
    key = _key()
    response = await _post(api, order_body("mer_unknown"), key)
    assert_error(response, 400, "merchant_not_found", "merchant_id")
    assert_nothing_stored(system, "mer_unknown", key)


async def test_a_suspended_merchant_takes_no_orders_until_reactivated(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    suspended = await api.post(f"/v1/merchants/{merchant_id}/suspend")
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    key = _key()
    assert_error(
        await _post(api, order_body(merchant_id), key), 400, "merchant_suspended", "merchant_id"
    )
    assert_nothing_stored(system, merchant_id, key)

    reactivated = await api.post(f"/v1/merchants/{merchant_id}/reactivate")
    assert reactivated.status_code == 200 and reactivated.json()["status"] == "active"
    retried = await _post(api, order_body(merchant_id), key)  # the same key, now accepted
    assert retried.status_code == 201, retried.text
    assert _orders_of(system, merchant_id) == [retried.json()["id"]]


async def test_an_order_without_an_idempotency_key_is_refused(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    response = await api.post("/v1/orders", json=order_body(merchant_id))
    assert_error(response, 400, "idempotency_key_missing", "Idempotency-Key")
    assert _orders_of(system, merchant_id) == []


async def test_a_malformed_json_body_is_a_400_not_a_500(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    key = _key()
    response = await api.post(
        "/v1/orders",
        content=f'{{"merchant_id": "{merchant_id}", "lines": ['.encode(),
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"].startswith("invalid_")
    assert_nothing_stored(system, merchant_id, key)


# -- coupons -------------------------------------------------------------------


async def _create_coupon(api: httpx.AsyncClient, kind: str, **fields: Any) -> str:
    code = f"C-{secrets.token_hex(6)}"
    response = await api.post("/v1/coupons", json={"code": code, "kind": kind, **fields})
    assert response.status_code == 201, response.text
    return code


async def _redeemed(api: httpx.AsyncClient, code: str) -> int:
    response = await api.get(f"/v1/coupons/{code}")
    assert response.status_code == 200, response.text
    return int(response.json()["redeemed"])


async def test_a_coupon_code_can_be_created_only_once(api: httpx.AsyncClient) -> None:
    code = await _create_coupon(api, "percentage", percent_off="0.10")
    again = await api.post(
        "/v1/coupons", json={"code": code, "kind": "percentage", "percent_off": "0.20"}
    )
    assert_error(again, 409, "coupon_exists", "code")
    assert (await api.get(f"/v1/coupons/{code}")).json()["percent_off"] == "0.10"


async def test_a_percentage_coupon_rounds_half_up_and_spreads_over_lines(
    api: httpx.AsyncClient,
) -> None:
    merchant_id = await create_merchant(api)
    code = await _create_coupon(api, "percentage", percent_off="0.10")
    order = await create_order(api, merchant_id, coupon_code=code)

    # 10% of 7498 is 749.8, rounded half up to 750.
    assert order["amounts"] == {"total": 7498, "discount": 750, "payable": 6748}
    assert order["coupon_code"] == code
    discounts = [line["discount_amount"] for line in order["lines"]]
    assert sum(discounts) == 750
    assert discounts == [400, 350]  # largest remainder: 399.9 + 350.1
    assert [line["payable_amount"] for line in order["lines"]] == [3598, 3150]
    assert order["payment"]["amount"] == 6748
    assert await _redeemed(api, code) == 1


async def test_an_expired_coupon_is_refused(api: httpx.AsyncClient, system: System) -> None:
    merchant_id = await create_merchant(api)
    now = datetime.now(UTC)
    code = await _create_coupon(
        api,
        "percentage",
        percent_off="0.10",
        valid_from=(now - timedelta(days=2)).isoformat(),
        valid_until=(now - timedelta(days=1)).isoformat(),
    )
    key = _key()
    response = await _post(api, order_body(merchant_id, coupon_code=code), key)
    assert_error(response, 400, "coupon_expired", "coupon_code")
    assert_nothing_stored(system, merchant_id, key)
    assert await _redeemed(api, code) == 0


async def test_a_threshold_coupon_below_its_threshold_is_refused(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    code = await _create_coupon(api, "threshold", amount_off=500, min_total=10_000, currency="CNY")
    key = _key()
    response = await _post(api, order_body(merchant_id, coupon_code=code), key)  # total 7498
    assert_error(response, 400, "coupon_not_applicable", "coupon_code")
    assert_nothing_stored(system, merchant_id, key)


async def test_a_single_use_coupon_is_held_by_its_order_and_released_on_cancel(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    code = await _create_coupon(api, "percentage", percent_off="0.10", max_redemptions=1)
    first = await create_order(api, merchant_id, coupon_code=code, payment_timeout_seconds=120)
    assert await _redeemed(api, code) == 1

    key = _key()
    second = await _post(api, order_body(merchant_id, coupon_code=code), key)
    assert_error(second, 400, "coupon_already_used", "coupon_code")
    assert _orders_of(system, merchant_id) == [first["id"]]
    assert not _key_claimed(system, key)

    cancelled = await api.post(f"/v1/orders/{first['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await _redeemed(api, code) == 0

    third = await create_order(api, merchant_id, coupon_code=code)
    assert third["amounts"]["discount"] == 750
    assert await _redeemed(api, code) == 1


async def test_a_fixed_coupon_above_the_total_completes_the_order_without_a_channel(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    code = await _create_coupon(api, "fixed", amount_off=10_000, currency="CNY")
    order = await create_order(api, merchant_id, coupon_code=code)
    assert order["amounts"] == {"total": 7498, "discount": 7498, "payable": 0}
    assert [line["payable_amount"] for line in order["lines"]] == [0, 0]
    # Nothing to pay: the answer comes once the order is paid, with no checkout to send to.
    assert order["status"] in ("paid", "settled", "completed")
    assert order["payment"]["checkout_url"] is None

    done = await wait_status(api, order["id"], "completed")
    assert done["payment"]["amount"] == 0
    assert done["payment"]["status"] == "paid"
    assert done["payment"]["checkout_url"] is None
    assert done["payment"]["channel_payment_id"] is None
    assert done["split"] == {"channel_fee": 0, "commission": 0, "merchant_net": 0}
    # Nothing moved, so the ledger holds nothing for the order.
    with Session(system.engine) as session:
        entries = session.exec(select(JournalEntry.id).where(JournalEntry.order_id == order["id"]))
        assert entries.all() == []


# -- idempotency ---------------------------------------------------------------


async def test_repeating_a_request_replays_the_first_response_byte_for_byte(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    key = _key()
    first = await _post(api, order_body(merchant_id), key)
    again = await _post(api, order_body(merchant_id), key)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.content == first.content
    assert _orders_of(system, merchant_id) == [first.json()["id"]]


async def test_reusing_a_key_for_another_request_conflicts_and_stores_nothing(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    key = _key()
    first = await _post(api, order_body(merchant_id), key)
    assert first.status_code == 201, first.text
    other = await _post(api, order_body(merchant_id, description="something else"), key)
    assert_error(other, 409, "idempotency_key_reused", "Idempotency-Key")
    assert _orders_of(system, merchant_id) == [first.json()["id"]]


async def test_concurrent_repeats_create_one_order(api: httpx.AsyncClient, system: System) -> None:
    merchant_id = await create_merchant(api)
    key = _key()
    responses = await asyncio.gather(*(_post(api, order_body(merchant_id), key) for _ in range(10)))
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1
    assert _orders_of(system, merchant_id) == [responses[0].json()["id"]]


# -- reads ---------------------------------------------------------------------


async def test_an_unknown_order_is_not_found(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/orders/ord_unknown"), 404, "order_not_found", "id")


async def test_listing_filters_by_merchant_and_status(api: httpx.AsyncClient) -> None:
    merchant_id, other_merchant_id = await create_merchant(api), await create_merchant(api)
    waiting = await create_order(api, merchant_id, payment_timeout_seconds=120)
    cancelled = await create_order(api, merchant_id)
    assert (await api.post(f"/v1/orders/{cancelled['id']}/cancel")).status_code == 200
    await create_order(api, other_merchant_id, payment_timeout_seconds=120)

    async def listed(status: str) -> list[str]:
        response = await api.get(
            "/v1/orders", params={"merchant_id": merchant_id, "status": status}
        )
        assert response.status_code == 200, response.text
        return [order["id"] for order in response.json()["data"]]

    assert await listed("awaiting_payment") == [waiting["id"]]
    assert await listed("cancelled") == [cancelled["id"]]


async def test_pages_walk_every_order_newest_first_without_repeats(
    api: httpx.AsyncClient,
) -> None:
    merchant_id = await create_merchant(api)
    created = [(await create_order(api, merchant_id))["id"] for _ in range(5)]

    seen: list[str] = []
    pages: list[tuple[int, bool]] = []
    params: dict[str, Any] = {"merchant_id": merchant_id, "limit": 2}
    while True:
        response = await api.get("/v1/orders", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [order["id"] for order in page["data"]]
        pages.append((len(page["data"]), page["has_more"]))
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        assert page["next_cursor"] == page["data"][-1]["id"]
        params["starting_after"] = page["next_cursor"]

    assert pages == [(2, True), (2, True), (1, False)]
    assert seen == list(reversed(created))


@pytest.mark.parametrize(
    ("params", "param"),
    [({"status": "shipped"}, "status"), ({"limit": 0}, "limit"), ({"limit": 1000}, "limit")],
    ids=["unknown-status", "limit-zero", "limit-too-large"],
)
async def test_a_bad_listing_query_is_refused(
    api: httpx.AsyncClient, params: dict[str, Any], param: str
) -> None:
    response = await api.get("/v1/orders", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"].startswith("invalid_")
    assert response.json()["error"]["param"] == param


# -- cancel, merchants, docs ---------------------------------------------------


async def test_cancelling_an_unknown_order_is_not_found(api: httpx.AsyncClient) -> None:
    assert_error(await api.post("/v1/orders/ord_unknown/cancel"), 404, "order_not_found", "id")


async def test_a_commission_rate_above_one_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/merchants", json=merchant_body(commission_rate="1.5"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "commission_rate"


async def test_an_unknown_merchant_is_not_found(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/merchants/mer_unknown")
    assert_error(response, 404, "merchant_not_found", "merchant_id")


async def test_a_merchant_can_be_suspended_and_reactivated(api: httpx.AsyncClient) -> None:
    merchant_id = await create_merchant(api, rate="0.025")

    async def status() -> str:
        response = await api.get(f"/v1/merchants/{merchant_id}")
        assert response.status_code == 200, response.text
        assert response.json()["commission_rate"] == "0.025"
        return str(response.json()["status"])

    assert await status() == "active"
    assert (await api.post(f"/v1/merchants/{merchant_id}/suspend")).status_code == 200
    assert await status() == "suspended"
    assert (await api.post(f"/v1/merchants/{merchant_id}/reactivate")).status_code == 200
    assert await status() == "active"


async def test_the_api_documents_itself(api: httpx.AsyncClient) -> None:
    assert (await api.get("/docs")).status_code == 200
    schema = await api.get("/openapi.json")
    assert schema.status_code == 200
    assert "/v1/orders" in schema.json()["paths"]


async def test_an_order_reads_back_as_created(api: httpx.AsyncClient) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, description="two teas", buyer_ref="buyer-7")
    read = await get_order(api, order["id"])
    assert read == order
    assert (read["description"], read["buyer_ref"]) == ("two teas", "buyer-7")


async def test_an_order_lists_its_payment_attempts_and_the_schema_says_so(
    api: httpx.AsyncClient,
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    attempts = await api.get(f"/v1/orders/{order['id']}/payments")
    assert attempts.status_code == 200, attempts.text
    assert attempts.json() == {"data": [order["payment"]]}  # one attempt: the current one
    missing = await api.get("/v1/orders/ord_000000000000000000000000/payments")
    assert_error(missing, 404, "order_not_found", "id")

    schema = (await api.get("/openapi.json")).json()
    listed = schema["paths"]["/v1/orders/{order_id}/payments"]["get"]
    answer = listed["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/PaymentAttempts"}
    payment = schema["components"]["schemas"]["PaymentOut"]["properties"]
    assert {"attempt", "reference", "status", "paid_at"} <= set(payment)
