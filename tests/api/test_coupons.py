"""Coupon campaigns as an operator runs them, and orders racing for them on the running stack.

The rules under concurrency are proven row by row in tests/db/test_coupon_concurrency.py;
here the whole path answers: the API's early check, the saga's reservation under the
coupon's lock, and what each shop is told.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from db.tables import CouponRedemption, Order
from tests.api.test_orders import assert_error
from tests.conftest import System
from tests.support import create_merchant, create_order, order_body, pay, wait_status


def _code() -> str:
    return f"CAMP-{secrets.token_hex(6)}"


async def _create(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"code": _code(), "kind": "percentage", "percent_off": "0.10"} | fields
    response = await api.post("/v1/coupons", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _coupon(api: httpx.AsyncClient, code: str) -> dict[str, Any]:
    response = await api.get(f"/v1/coupons/{code}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _post_order(api: httpx.AsyncClient, merchant_id: str, code: str) -> httpx.Response:
    return await api.post(
        "/v1/orders",
        json=order_body(merchant_id, coupon_code=code, payment_timeout_seconds=300),
        headers={"Idempotency-Key": f"test-{secrets.token_hex(8)}"},
    )


def _holds(system: System, code: str) -> dict[str, str]:
    with Session(system.engine) as session:
        rows = session.exec(
            select(CouponRedemption.order_id, CouponRedemption.status).where(
                CouponRedemption.coupon_code == code
            )
        ).all()
    return dict(rows)


def _orders_with(system: System, code: str) -> set[str]:
    with Session(system.engine) as session:
        return set(session.exec(select(Order.id).where(Order.coupon_code == code)).all())


# -- campaigns -----------------------------------------------------------------


async def test_a_campaign_reads_back_with_its_limits_and_what_is_left(
    api: httpx.AsyncClient,
) -> None:
    now = datetime.now(UTC)
    created = await _create(
        api,
        kind="threshold",
        percent_off=None,
        amount_off=500,
        min_total=5_000,
        currency="CNY",
        valid_from=(now - timedelta(hours=1)).isoformat(),
        valid_until=(now + timedelta(days=7)).isoformat(),
        max_redemptions=500,
        per_buyer_limit=2,
    )
    read = await _coupon(api, created["code"])
    assert read == created
    assert (read["max_redemptions"], read["per_buyer_limit"]) == (500, 2)
    assert (read["redeemed"], read["consumed"], read["remaining"]) == (0, 0, 500)
    assert read["disabled_at"] is None


@pytest.mark.parametrize(
    ("fields", "code", "param"),
    [
        ({"per_buyer_limit": 0}, "invalid_greater_than_equal", "per_buyer_limit"),
        ({"per_buyer_limit": "2"}, "invalid_int_type", "per_buyer_limit"),
        ({"per_buyer_limit": 1.5}, "invalid_int_type", "per_buyer_limit"),
        ({"max_redemptions": 0}, "invalid_greater_than_equal", "max_redemptions"),
        ({"percent_off": "1.5"}, "invalid_coupon", "kind"),
        ({"percent_off": "ten"}, "invalid_decimal_parsing", "percent_off"),
        ({"amount_off": 100}, "invalid_coupon", "kind"),
        ({"kind": "fixed", "percent_off": None, "amount_off": 100}, "invalid_coupon", "kind"),
        ({"kind": "bogus"}, "invalid_enum", "kind"),
        ({"currency": "XYZ"}, "unknown_currency", "currency"),
        ({"valid_from": "2030-01-01T00:00:00"}, "invalid_timezone_aware", "valid_from"),
        (
            {"valid_from": "2030-01-02T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"},
            "invalid_coupon",
            "kind",
        ),
        ({"code": "has space"}, "invalid_string_pattern_mismatch", "code"),
        ({"buyer_id": "usr_1"}, "invalid_extra_forbidden", "buyer_id"),
    ],
    ids=[
        "per-buyer-zero",
        "per-buyer-string",
        "per-buyer-fraction",
        "quantity-zero",
        "percent-over-one",
        "percent-not-a-number",
        "percentage-with-amount",
        "fixed-without-currency",
        "unknown-kind",
        "unknown-currency",
        "naive-datetime",
        "window-backwards",
        "code-with-space",
        "unknown-field",
    ],
)
async def test_a_bad_campaign_is_a_400_naming_the_field(
    api: httpx.AsyncClient, fields: dict[str, Any], code: str, param: str
) -> None:
    body = {"code": _code(), "kind": "percentage", "percent_off": "0.10"} | fields
    response = await api.post("/v1/coupons", json=body)
    assert_error(response, 400, code, param)
    if "code" not in fields:
        assert (await api.get(f"/v1/coupons/{body['code']}")).status_code == 404


async def test_campaigns_list_newest_first_page_by_page(api: httpx.AsyncClient) -> None:
    codes = [(await _create(api))["code"] for _ in range(3)]

    first = await api.get("/v1/coupons", params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [c["code"] for c in page["data"]] == [codes[2], codes[1]]
    assert (page["has_more"], page["next_cursor"]) == (True, codes[1])
    second = await api.get("/v1/coupons", params={"limit": 2, "starting_after": codes[1]})
    assert second.status_code == 200, second.text
    assert second.json()["data"][0]["code"] == codes[0]
    assert second.json()["data"][0]["remaining"] == 1

    unknown = await api.get("/v1/coupons", params={"starting_after": "NO-SUCH-COUPON"})
    assert_error(unknown, 400, "cursor_invalid", "starting_after")
    assert (await api.get("/v1/coupons", params={"limit": 0})).status_code == 400


async def test_an_unknown_campaign_is_not_found(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/coupons/NOPE-404"), 404, "coupon_not_found", "code")
    assert_error(await api.post("/v1/coupons/NOPE-404/disable"), 404, "coupon_not_found", "code")


async def test_a_disabled_campaign_refuses_new_orders_and_keeps_the_holds_it_has(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    code = (await _create(api, max_redemptions=5))["code"]
    holding = await create_order(api, merchant_id, coupon_code=code, payment_timeout_seconds=300)

    disabled = await api.post(f"/v1/coupons/{code}/disable")
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["disabled_at"] is not None
    assert (disabled.json()["redeemed"], disabled.json()["remaining"]) == (1, 4)
    again = await api.post(f"/v1/coupons/{code}/disable")
    assert again.json()["disabled_at"] == disabled.json()["disabled_at"]

    refused = await _post_order(api, merchant_id, code)
    assert_error(refused, 400, "coupon_disabled", "coupon_code")
    assert _orders_with(system, code) == {holding["id"]}

    # The order that held it before keeps its discount, and its payment consumes the hold.
    await pay(sandbox, holding["id"])
    done = await wait_status(api, holding["id"], "completed")
    assert done["amounts"]["discount"] == 750
    assert _holds(system, code) == {holding["id"]: "consumed"}
    assert (await _coupon(api, code))["consumed"] == 1


# -- racing orders -------------------------------------------------------------


async def test_orders_racing_for_a_campaign_get_exactly_its_quantity(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    racing, quantity = 8, 3
    merchant_id = await create_merchant(api)
    code = (await _create(api, max_redemptions=quantity))["code"]

    responses = await asyncio.gather(*(_post_order(api, merchant_id, code) for _ in range(racing)))

    created = [r.json() for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(created) == quantity, [r.text for r in responses]
    for response in refused:
        assert_error(response, 400, "coupon_already_used", "coupon_code")
    assert _orders_with(system, code) == {order["id"] for order in created}
    assert _holds(system, code) == {order["id"]: "reserved" for order in created}
    coupon = await _coupon(api, code)
    assert (coupon["redeemed"], coupon["consumed"], coupon["remaining"]) == (3, 0, 0)

    # A cancelled order frees its slot, and the next order takes it.
    cancelled = await api.post(f"/v1/orders/{created[0]['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (await _coupon(api, code))["remaining"] == 1
    replacement = await _post_order(api, merchant_id, code)
    assert replacement.status_code == 201, replacement.text
    full = await _post_order(api, merchant_id, code)
    assert_error(full, 400, "coupon_already_used", "coupon_code")

    # A paid order consumes its hold: the slot stays taken.
    await pay(sandbox, created[1]["id"])
    await wait_status(api, created[1]["id"], "completed")
    assert _holds(system, code) == {
        created[0]["id"]: "released",
        created[1]["id"]: "consumed",
        created[2]["id"]: "reserved",
        replacement.json()["id"]: "reserved",
    }
    coupon = await _coupon(api, code)
    assert (coupon["redeemed"], coupon["consumed"], coupon["remaining"]) == (3, 1, 0)
