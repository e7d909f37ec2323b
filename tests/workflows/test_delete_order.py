"""Deleting an order: an unpaid one is cancelled by its saga, a paid one refunded in full, once.

Real API, real sandbox channels over HTTP, real Temporal, real database.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from db.tables import Refund
from domain.keys import deletion_refund_id
from tests.conftest import System
from tests.support import (
    assert_ledger_sound,
    create_merchant,
    create_order,
    get_order,
    one_succeeded_refund,
    order_refunds,
    pay,
    wait_for,
    wait_status,
)


async def _paid_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, **overrides: Any
) -> dict[str, Any]:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, **overrides)
    await pay(sandbox, order["id"])
    return await wait_status(api, order["id"], "completed")


async def test_deleting_an_unpaid_order_cancels_it_and_its_payment(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)

    response = await api.delete(f"/v1/orders/{order['id']}")

    assert response.status_code == 200, response.text
    deleted = response.json()
    assert (deleted["status"], deleted["close_reason"]) == ("cancelled", "deleted")
    assert deleted["payment"]["status"] == "closed"
    at_channel = await sandbox.post(f"/control/payments/{order['id']}/pay", json={})
    assert at_channel.status_code == 409  # the channel no longer takes money for it
    again = await api.delete(f"/v1/orders/{order['id']}")
    assert (again.status_code, again.json()) == (200, deleted)
    assert order_refunds(system.engine, order["id"]) == []


async def test_deleting_a_paid_order_refunds_it_in_full_once_however_often_it_is_deleted(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    order = await _paid_order(api, sandbox, channel="wechatpay")

    first = await api.delete(f"/v1/orders/{order['id']}")
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "completed"
    repeats = await asyncio.gather(*(api.delete(f"/v1/orders/{order['id']}") for _ in range(3)))
    assert [r.status_code for r in repeats] == [202, 202, 202], [r.text for r in repeats]

    refund = await one_succeeded_refund(system.engine, order["id"])
    assert (refund.id, refund.amount) == (deletion_refund_id(order["id"], "operator"), 7498)
    assert (refund.reason, refund.requested_by) == ("order deleted", "operator")  # the caller
    after = await api.delete(f"/v1/orders/{order['id']}")
    assert after.status_code == 202
    assert after.json()["refunded_amount"] == 7498
    assert order_refunds(system.engine, order["id"]) == [refund]
    assert_ledger_sound(system.engine)


async def test_deleting_a_partly_refunded_order_refunds_the_rest(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    order = await _paid_order(api, sandbox, channel="card")
    partial = await api.post(
        f"/v1/orders/{order['id']}/refunds",
        json={"amount": 1000},
        headers={"Idempotency-Key": f"partial-{order['id']}"},
    )
    assert partial.status_code == 201, partial.text

    response = await api.delete(f"/v1/orders/{order['id']}")
    assert response.status_code == 202, response.text

    async def refunds() -> list[Refund]:
        return order_refunds(system.engine, order["id"])

    done = await wait_for(
        refunds,
        lambda rows: len(rows) == 2 and all(r.status == "succeeded" for r in rows),
        "both refunds to succeed",
    )
    assert sorted(r.amount for r in done) == [1000, 6498]
    assert (await get_order(api, order["id"]))["refunded_amount"] == 7498
    assert_ledger_sound(system.engine)


async def test_deleting_a_modified_paid_order_refunds_its_new_payment(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel="alipay")
    lines = [{"sku": "tea-001", "name": "Oolong tea", "quantity": 1, "unit_amount": 1999}]
    modified = await api.post(f"/v1/orders/{order['id']}/modify", json={"lines": lines})
    assert modified.status_code == 200, modified.text
    await pay(sandbox, modified.json()["payment"]["reference"])
    await wait_status(api, order["id"], "completed")

    response = await api.delete(f"/v1/orders/{order['id']}")
    assert response.status_code == 202, response.text

    refund = await one_succeeded_refund(system.engine, order["id"])
    assert refund.amount == 1999  # refunded at the channel under the second attempt's reference
    assert_ledger_sound(system.engine)


async def test_deleting_an_unknown_order_is_not_found(api: httpx.AsyncClient) -> None:
    response = await api.delete("/v1/orders/ord_000000000000000000000000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "order_not_found"
