"""Modifying an unpaid order: re-priced, coupon checked again, payment closed and issued anew.

Real API, real sandbox channels over HTTP, real Temporal, real database. The
buyer pays through the sandbox's control API, by the payment's channel
reference (the order id, then "{order id}__{attempt}" after each modification).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from activities.errors import COUPON_REJECTED
from db.tables import Refund
from domain.keys import order_workflow_id
from domain.pricing import OrderLine
from domain.saga import ModifyRequest
from sandbox.protocol import Event
from tests.channel_messages import message, payment_event
from tests.conftest import System
from tests.support import (
    assert_ledger_sound,
    create_merchant,
    create_order,
    get_order,
    order_refunds,
    pay,
    wait_for,
    wait_status,
)
from worker import WORKFLOWS
from workflows.order import OrderWorkflow

CHANNELS = ["alipay", "wechatpay", "card"]
# The default order (tests.support.order_body) is 2 x 1999 + 1 x 3500 = 7498.
NEW_LINES = [
    {"sku": "tea-001", "name": "Oolong tea", "quantity": 3, "unit_amount": 1999},
    {"sku": "pot-003", "name": "Tea pot", "quantity": 1, "unit_amount": 4200},
]
NEW_TOTAL = 3 * 1999 + 4200


async def _modify(
    api: httpx.AsyncClient, order_id: str, lines: list[dict[str, Any]]
) -> httpx.Response:
    return await api.post(f"/v1/orders/{order_id}/modify", json={"lines": lines})


async def _modified(
    api: httpx.AsyncClient, order_id: str, lines: list[dict[str, Any]]
) -> dict[str, Any]:
    response = await _modify(api, order_id, lines)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _attempts(api: httpx.AsyncClient, order_id: str) -> list[tuple[str, str, int]]:
    """The order's payment attempts as the API lists them: (reference, status, amount)."""
    response = await api.get(f"/v1/orders/{order_id}/payments")
    assert response.status_code == 200, response.text
    return [(p["reference"], p["status"], p["amount"]) for p in response.json()["data"]]


async def _replays(temporal: Client, order_id: str) -> None:
    """The finished saga's history replays on today's code (a modification is deterministic)."""
    handle = temporal.get_workflow_handle(order_workflow_id(order_id))
    await handle.result()
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(await handle.fetch_history())


def _paid_as_priced(order: dict[str, Any]) -> None:
    """What the buyer paid is what the order asks, and the split adds up to it."""
    assert order["payment"]["status"] == "paid"
    assert order["payment"]["amount"] == order["amounts"]["payable"]
    split = order["split"]
    assert split is not None
    assert sum(split.values()) == order["amounts"]["payable"]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_modified_order_is_repriced_and_paid_at_its_new_amount(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, channel: str
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel=channel)
    assert order["payment"]["reference"] == order["id"]

    modified = await _modified(api, order["id"], NEW_LINES)

    assert modified["status"] == "awaiting_payment"
    assert modified["amounts"] == {"total": NEW_TOTAL, "discount": 0, "payable": NEW_TOTAL}
    assert [(line["sku"], line["quantity"], line["line_total"]) for line in modified["lines"]] == [
        ("tea-001", 3, 5997),
        ("pot-003", 1, 4200),
    ]
    payment = modified["payment"]
    assert (payment["reference"], payment["attempt"]) == (f"{order['id']}__2", 2)
    assert (payment["status"], payment["amount"]) == ("pending", NEW_TOTAL)
    assert payment["checkout_url"] and payment["checkout_url"] != order["payment"]["checkout_url"]
    # The first checkout was closed at the channel: the old amount can no longer be paid.
    old = await sandbox.post(f"/control/payments/{order['id']}/pay", json={})
    assert old.status_code == 409, old.text

    await pay(sandbox, payment["reference"])
    done = await wait_status(api, order["id"], "completed")
    _paid_as_priced(done)
    assert done["amounts"]["payable"] == NEW_TOTAL
    assert order_refunds(system.engine, order["id"]) == []
    assert_ledger_sound(system.engine)


async def test_an_order_can_be_modified_again_and_each_attempt_has_its_reference(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel="wechatpay")
    await _modified(api, order["id"], NEW_LINES)
    again = await _modified(api, order["id"], NEW_LINES[:1])
    assert again["payment"]["reference"] == f"{order['id']}__3"
    assert again["amounts"]["payable"] == 5997

    await pay(sandbox, again["payment"]["reference"])
    done = await wait_status(api, order["id"], "completed")
    _paid_as_priced(done)
    # Every attempt stays: the two a modification replaced, closed, and the one paid.
    assert await _attempts(api, order["id"]) == [
        (order["id"], "closed", 7498),
        (f"{order['id']}__2", "closed", NEW_TOTAL),
        (f"{order['id']}__3", "paid", 5997),
    ]
    view = await temporal.get_workflow_handle(order_workflow_id(order["id"])).query(
        OrderWorkflow.view
    )
    assert view.payment_attempt == 3
    assert view.steps_done.count("record_modification") == 2
    await _replays(temporal, order["id"])


async def test_a_lost_notification_of_the_new_payment_is_found_by_querying_it(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel="card", payment_timeout_seconds=20)
    modified = await _modified(api, order["id"], NEW_LINES)
    await pay(sandbox, modified["payment"]["reference"], notify="drop")
    done = await wait_status(api, order["id"], "completed", timeout=15)
    _paid_as_priced(done)
    assert done["amounts"]["payable"] == NEW_TOTAL


async def _threshold_coupon(api: httpx.AsyncClient) -> str:
    code = f"OVER5K{time.time_ns()}"
    created = await api.post(
        "/v1/coupons",
        json={
            "code": code,
            "kind": "threshold",
            "amount_off": 500,
            "min_total": 5000,
            "currency": "CNY",
        },
    )
    assert created.status_code == 201, created.text
    return code


async def test_a_coupon_no_longer_met_refuses_the_modification_and_changes_nothing(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    code = await _threshold_coupon(api)
    order = await create_order(api, merchant_id, coupon_code=code)
    assert order["amounts"] == {"total": 7498, "discount": 500, "payable": 6998}

    below = [NEW_LINES[0] | {"quantity": 2}]  # 3998: under the coupon's 5000
    response = await _modify(api, order["id"], below)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("coupon_not_applicable", "coupon_code")
    assert await get_order(api, order["id"]) == order

    # Still payable as it was.
    await pay(sandbox, order["id"])
    done = await wait_status(api, order["id"], "completed")
    _paid_as_priced(done)
    assert done["amounts"]["payable"] == 6998


async def test_the_saga_checks_the_coupon_again_before_it_touches_the_payment(
    api: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    code = await _threshold_coupon(api)
    order = await create_order(api, merchant_id, coupon_code=code)
    handle = temporal.get_workflow_handle(order_workflow_id(order["id"]))
    below = ModifyRequest(
        lines=(OrderLine(sku="tea-001", name="Oolong", quantity=1, unit_amount=1999),)
    )

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(OrderWorkflow.modify_order, below)

    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == COUPON_REJECTED
    assert cause.details[0] == "coupon_not_applicable"
    view = await handle.query(OrderWorkflow.view)
    assert view.steps_done == ("record_order", "reserve_coupon", "create_payment")
    assert view.payment_attempt == 1
    assert await get_order(api, order["id"]) == order


@pytest.mark.parametrize(
    ("lines", "code", "param"),
    [
        ([], "empty_order", "lines"),
        ([NEW_LINES[0] | {"quantity": 0}], "quantity_not_positive", "lines[0].quantity"),
        ([NEW_LINES[0] | {"unit_amount": 0}], "payable_zero", "lines"),
        ([NEW_LINES[0] | {"colour": "red"}], "invalid_extra_forbidden", "lines[0].colour"),
    ],
)
async def test_lines_that_cannot_be_priced_are_refused_and_change_nothing(
    api: httpx.AsyncClient, lines: list[dict[str, Any]], code: str, param: str
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    response = await _modify(api, order["id"], lines)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert await get_order(api, order["id"]) == order


async def test_a_paid_order_cannot_be_modified(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, auto_complete_seconds=3600)
    await pay(sandbox, order["id"])
    held = await wait_status(api, order["id"], "awaiting_receipt")

    response = await _modify(api, order["id"], NEW_LINES)  # the saga is running: it refuses
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "order_not_modifiable"
    assert await get_order(api, order["id"]) == held

    assert (await api.post(f"/v1/orders/{order['id']}/confirm-receipt")).status_code == 200
    response = await _modify(api, order["id"], NEW_LINES)  # the saga has ended
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "order_not_modifiable"


async def test_a_cancelled_or_unknown_order_cannot_be_modified(api: httpx.AsyncClient) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    assert (await api.post(f"/v1/orders/{order['id']}/cancel")).status_code == 200
    response = await _modify(api, order["id"], NEW_LINES)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "order_not_modifiable"

    unknown = await _modify(api, "ord_000000000000000000000000", NEW_LINES)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "order_not_found"


async def test_a_late_payment_of_a_replaced_attempt_is_given_back(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel="wechatpay")
    modified = await _modified(api, order["id"], NEW_LINES)
    # The channel takes the old amount anyway (a stale QR code, say).
    await pay(sandbox, order["id"], force=True)

    async def refunds() -> list[Refund]:
        return order_refunds(system.engine, order["id"])

    [refund] = await wait_for(
        refunds, lambda r: len(r) == 1 and r[0].status == "succeeded", "the late payment's refund"
    )
    assert (refund.reason, refund.amount) == ("late_payment", 7498)
    waiting = await get_order(api, order["id"])
    assert waiting["status"] == "awaiting_payment"
    assert waiting["amounts"]["payable"] == NEW_TOTAL

    await pay(sandbox, modified["payment"]["reference"])
    done = await wait_status(api, order["id"], "completed")
    _paid_as_priced(done)
    assert done["amounts"]["payable"] == NEW_TOTAL
    assert_ledger_sound(system.engine)
    await _replays(temporal, order["id"])


async def test_the_notify_route_judges_a_payment_by_the_attempt_it_names(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel="alipay")
    modified = await _modified(api, order["id"], NEW_LINES)
    reference = modified["payment"]["reference"]

    async def notify(event: Event) -> httpx.Response:
        wire = message(system.env, "alipay", event)
        return await api.post("/v1/channels/alipay/notify", content=wire.body, headers=wire.headers)

    # An attempt the order never had is refused, in Alipay's terms.
    future = await notify(payment_event(modified, out_trade_no=f"{order['id']}__3"))
    assert future.status_code == 400, future.text
    assert future.json()["error"]["code"] == "notification_mismatch"

    # The replaced attempt, for an amount it never asked: taken, and left to ops.
    odd = await notify(payment_event(order, amount=1234))
    assert (odd.status_code, odd.text) == (200, "success")
    flagged = await wait_for(
        lambda: get_order(api, order["id"]), lambda o: o["needs_review"], "the review flag"
    )
    assert "replaced attempt 1: amount mismatch" in flagged["review_reason"]
    assert flagged["status"] == "awaiting_payment"
    assert order_refunds(system.engine, order["id"]) == []

    # The current attempt, for the new amount: the order's payment.
    current = payment_event(modified, out_trade_no=reference)
    assert (await notify(current)).text == "success"
    done = await wait_status(api, order["id"], "completed")
    assert done["payment"]["channel_txn_id"] == current.data.txn_id
    _paid_as_priced(done)


# The buyer's payment starts this long after the modification is sent, round by round, so
# that it lands before, during and after the saga's close of the pending payment.
PAYMENT_DELAYS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)


async def _pay_after(sandbox: httpx.AsyncClient, reference: str, delay: float) -> httpx.Response:
    await asyncio.sleep(delay)  # staggers the race; no state is waited for
    return await sandbox.post(f"/control/payments/{reference}/pay", json={})


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_modification_racing_the_buyers_payment_never_takes_the_wrong_amount(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    channel: str,
    temporal: Client,
) -> None:
    """Either the buyer's payment of the old amount wins (the order is paid as it was and
    the modification refused) or the close does (the old amount can no longer be paid and
    the buyer pays the new one); never a paid order with an amount it did not ask for."""
    merchant_id = await create_merchant(api)
    outcomes: list[str] = []
    for delay in PAYMENT_DELAYS:
        order = await create_order(api, merchant_id, channel=channel)
        modification, payment = await asyncio.gather(
            _modify(api, order["id"], NEW_LINES), _pay_after(sandbox, order["id"], delay)
        )
        if modification.status_code == 200:
            assert payment.status_code == 409, payment.text  # closed before the buyer paid
            await pay(sandbox, modification.json()["payment"]["reference"])
            expected, lines = NEW_TOTAL, NEW_LINES
            outcomes.append("modified")
        else:
            assert modification.status_code == 409, modification.text
            assert modification.json()["error"]["code"] == "order_not_modifiable"
            assert payment.status_code == 200, payment.text
            expected, lines = 7498, order["lines"]
            handle = temporal.get_workflow_handle(order_workflow_id(order["id"]))
            steps = (await handle.query(OrderWorkflow.view)).steps_done
            # The saga's close found the buyer had paid, or it took the notification first.
            outcomes.append("paid, found by the close" if "close_payment" in steps else "paid")
        done = await wait_status(api, order["id"], "completed")
        _paid_as_priced(done)
        assert done["amounts"]["payable"] == expected, outcomes
        assert [line["sku"] for line in done["lines"]] == [line["sku"] for line in lines]
        assert order_refunds(system.engine, order["id"]) == [], outcomes
        assert_ledger_sound(system.engine)
        await _replays(temporal, order["id"])
