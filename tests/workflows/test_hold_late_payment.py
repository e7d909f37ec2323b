"""A payment that reaches an order during its receipt hold is given back at once.

The hold lasts an hour here (seven days in production): the late payment of a
replaced attempt must not wait for it to end.
"""

from __future__ import annotations

import httpx

from db.tables import Refund
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    get_order,
    order_refunds,
    pay,
    wait_for,
    wait_status,
)

NEW_LINES = [{"sku": "tea-001", "name": "Oolong tea", "quantity": 3, "unit_amount": 1999}]


async def test_a_late_payment_during_the_receipt_hold_is_refunded_at_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    order = await create_order(api, await create_merchant(api), auto_complete_seconds=3600)
    modified = await api.post(f"/v1/orders/{order['id']}/modify", json={"lines": NEW_LINES})
    assert modified.status_code == 200, modified.text
    await pay(sandbox, modified.json()["payment"]["reference"])
    await wait_status(api, order["id"], "awaiting_receipt")
    # The channel takes the first attempt's amount anyway (a stale QR code, say).
    await pay(sandbox, order["id"], force=True)

    async def refunds() -> list[Refund]:
        return order_refunds(system.engine, order["id"])

    [refund] = await wait_for(
        refunds, lambda r: len(r) == 1 and r[0].status == "succeeded", "the late payment's refund"
    )
    assert (refund.reason, refund.amount) == ("late_payment", 7498)
    held = await get_order(api, order["id"])
    assert held["status"] == "awaiting_receipt"  # the hold goes on
    assert (await api.post(f"/v1/orders/{order['id']}/confirm-receipt")).status_code == 200
    await wait_status(api, order["id"], "completed")
