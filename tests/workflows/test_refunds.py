"""Refunds end to end: real API, refund workflows, sandbox channel and database."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from db.ledger import account_balance
from db.reconcile import order_breakdown
from domain.ledger import AccountKind, account_id
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    get_order,
    pay,
    post_refund,
    wait_for,
    wait_status,
)

# The standard test order: 7498 CNY on alipay at 0.6% fee and 5% commission.
PAYABLE, FEE, COMMISSION = 7498, 45, 375
NET = PAYABLE - FEE - COMMISSION
# The merchant's net by channel: the wallets charge 0.6% (45), the card gateway 2.9% (217).
NET_ON = {"alipay": NET, "wechatpay": NET, "card": PAYABLE - 217 - COMMISSION}
# A refund of 2000 gives back fee, commission and the merchant's part in proportion, half up.
PARTS_OF_2000 = {
    "alipay": {"channel_fee": 12, "commission": 100, "merchant_net": 1888},
    "wechatpay": {"channel_fee": 12, "commission": 100, "merchant_net": 1888},
    "card": {"channel_fee": 58, "commission": 100, "merchant_net": 1842},
}


async def _paid_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, status: str = "completed", **extra: Any
) -> tuple[str, dict[str, Any]]:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, **extra)
    await pay(sandbox, order["id"])
    return merchant_id, await wait_status(api, order["id"], status)


async def _refund(
    api: httpx.AsyncClient, order_id: str, key: str | None = None, **body: Any
) -> httpx.Response:
    return await post_refund(api, order_id, key, **body)


async def _settled_refund(api: httpx.AsyncClient, refund_id: str, status: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        return dict((await api.get(f"/v1/refunds/{refund_id}")).json())

    return await wait_for(read, lambda r: r["status"] == status, f"refund {refund_id} {status}")


def _balance(system: System, kind: AccountKind, owner: str) -> int:
    with Session(system.engine) as session:
        return account_balance(session, account_id(kind, owner, "CNY"))


@pytest.mark.parametrize("channel", ["alipay", "wechatpay", "card"])
async def test_partial_refunds_add_up_to_the_payment_and_no_more(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, channel: str
) -> None:
    merchant_id, order = await _paid_order(api, sandbox, channel=channel)
    first = await _refund(api, order["id"], amount=2000, reason="one cup broken")
    assert first.status_code == 201, first.text
    assert first.json()["status"] in ("pending", "succeeded")  # the channel may be quick
    done = await _settled_refund(api, first.json()["id"], "succeeded")
    parts = done["parts"]
    assert sum(parts.values()) == 2000
    assert parts == PARTS_OF_2000[channel]

    rest = await _refund(api, order["id"], amount=PAYABLE - 2000)
    assert rest.status_code == 201, rest.text
    await _settled_refund(api, rest.json()["id"], "succeeded")
    too_much = await _refund(api, order["id"], amount=1)
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "amount_exceeds_refundable"

    final = await get_order(api, order["id"])
    assert final["refunded_amount"] == PAYABLE and final["refunding_amount"] == 0
    with Session(system.engine) as session:
        assert order_breakdown(session, order["id"]) == {
            "merchant": 0,
            "commission": 0,
            "channel_fee": 0,
            "refunds_in_flight": 0,
            "late_payments": 0,
            "clearing": 0,
        }
    assert _balance(system, AccountKind.MERCHANT_AVAILABLE, merchant_id) == 0


async def test_refund_by_lines_gives_back_the_lines_share(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    _, order = await _paid_order(api, sandbox)
    one_tea = await _refund(api, order["id"], lines=[{"line_no": 0, "quantity": 1}])
    assert one_tea.status_code == 201, one_tea.text
    assert one_tea.json()["amount"] == 1999
    assert one_tea.json()["lines"] == [{"line_no": 0, "quantity": 1}]
    too_many = await _refund(api, order["id"], lines=[{"line_no": 0, "quantity": 2}])
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "quantity_exceeds_refundable"
    no_line = await _refund(api, order["id"], lines=[{"line_no": 7, "quantity": 1}])
    assert no_line.json()["error"]["code"] == "line_invalid"
    cup = await _refund(api, order["id"], lines=[{"line_no": 1, "quantity": 1}])
    assert cup.status_code == 201, cup.text
    # The order's refunds listed, their lines read in one query: each shows its own.
    listed = (await api.get(f"/v1/orders/{order['id']}/refunds")).json()
    assert {r["id"]: r["lines"] for r in listed} == {
        one_tea.json()["id"]: [{"line_no": 0, "quantity": 1}],
        cup.json()["id"]: [{"line_no": 1, "quantity": 1}],
    }


async def test_same_idempotency_key_is_one_refund_and_another_body_conflicts(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    _, order = await _paid_order(api, sandbox)
    first = await _refund(api, order["id"], key="refund-1", amount=500)
    again = await _refund(api, order["id"], key="refund-1", amount=500)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = await _refund(api, order["id"], key="refund-1", amount=600)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    await _settled_refund(api, first.json()["id"], "succeeded")
    later = await _refund(api, order["id"], key="refund-1", amount=500)  # after it ended
    assert later.status_code == 201 and later.json()["status"] == "succeeded"
    listed = (await api.get(f"/v1/orders/{order['id']}/refunds")).json()
    assert [r["id"] for r in listed] == [first.json()["id"]]


@pytest.mark.every_backend  # the row lock (PostgreSQL) and the write lock (SQLite) both hold
async def test_racing_refunds_never_exceed_the_payment(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    _, order = await _paid_order(api, sandbox)
    answers = await asyncio.gather(*(_refund(api, order["id"], amount=3000) for _ in range(6)))
    accepted = [a for a in answers if a.status_code == 201]
    assert len(accepted) == 2  # 2 x 3000 <= 7498 < 3 x 3000
    assert {a.json()["error"]["code"] for a in answers if a.status_code != 201} == {
        "amount_exceeds_refundable"
    }
    for answer in accepted:
        await _settled_refund(api, answer.json()["id"], "succeeded")
    assert (await get_order(api, order["id"]))["refunded_amount"] == 6000


@pytest.mark.parametrize("channel", ["alipay", "wechatpay", "card"])
async def test_refused_refund_fails_with_the_reason_and_moves_nothing(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, channel: str, system: System
) -> None:
    merchant_id, order = await _paid_order(api, sandbox, channel=channel)
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "fail"})
    refused = await _refund(api, order["id"], amount=1000)
    assert refused.status_code == 201, refused.text
    failed = await _settled_refund(api, refused.json()["id"], "failed")
    assert failed["failure_reason"]
    assert _balance(system, AccountKind.MERCHANT_AVAILABLE, merchant_id) == NET_ON[channel]
    assert _balance(system, AccountKind.REFUNDS_IN_FLIGHT, channel) >= 0
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "succeed"})
    retried = await _refund(api, order["id"], amount=PAYABLE)  # the whole amount is free again
    assert retried.status_code == 201, retried.text
    await _settled_refund(api, retried.json()["id"], "succeeded")


async def test_pending_refund_waits_for_the_channel(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    _, order = await _paid_order(api, sandbox)
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "pending"})
    asked = await _refund(api, order["id"], amount=700)
    refund_id = asked.json()["id"]
    assert (await get_order(api, order["id"]))["refunding_amount"] == 700
    completed = await sandbox.post(f"/control/refunds/{refund_id}/complete")
    assert completed.status_code == 200, completed.text
    await _settled_refund(api, refund_id, "succeeded")


async def test_refund_before_completion_comes_from_pending_then_the_rest_is_released(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id, order = await _paid_order(
        api, sandbox, status="awaiting_receipt", auto_complete_seconds=3600
    )
    assert _balance(system, AccountKind.MERCHANT_PENDING, merchant_id) == NET
    refund = await _refund(api, order["id"], amount=2000)
    await _settled_refund(api, refund.json()["id"], "succeeded")
    assert _balance(system, AccountKind.MERCHANT_PENDING, merchant_id) == NET - 1888
    confirmed = await api.post(f"/v1/orders/{order['id']}/confirm-receipt")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "completed"
    assert _balance(system, AccountKind.MERCHANT_PENDING, merchant_id) == 0
    assert _balance(system, AccountKind.MERCHANT_AVAILABLE, merchant_id) == NET - 1888
    again = await api.post(f"/v1/orders/{order['id']}/confirm-receipt")
    assert again.status_code == 200  # confirming twice is harmless


async def test_unpaid_order_cannot_be_refunded_or_confirmed(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    refused = await _refund(api, order["id"], amount=100)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "order_not_refundable"
    confirm = await api.post(f"/v1/orders/{order['id']}/confirm-receipt")
    assert confirm.status_code == 409
    bad = await _refund(api, order["id"], amount=100, lines=[{"line_no": 0, "quantity": 1}])
    assert bad.status_code == 400
    missing = await _refund(api, "ord_nope", amount=100)
    assert missing.status_code == 404
