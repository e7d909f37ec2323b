"""The order saga end to end: real API, real sandbox over HTTP, real Temporal, real database."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

import stack
from db.ledger import account_balance
from db.reconcile import order_breakdown
from db.tables import JournalEntry, Posting, Refund
from domain.keys import order_workflow_id
from domain.ledger import AccountKind, account_id
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    get_order,
    one_succeeded_refund,
    order_body,
    order_refunds,
    pay,
    wait_for,
    wait_status,
)
from workflows.order import OrderWorkflow


def _postings(system: System, order_id: str) -> list[tuple[str, str, int]]:
    """The postings of the order's settlement entry (and its reversal, if any)."""
    with Session(system.engine) as session:
        rows = session.exec(
            select(JournalEntry.id, Posting.account, Posting.amount)
            .join(Posting, Posting.entry_id == JournalEntry.id)  # type: ignore[arg-type]
            .where(
                JournalEntry.order_id == order_id,
                col(JournalEntry.kind).in_(["settlement", "reversal"]),
            )
        ).all()
        return [(entry, account, amount) for entry, account, amount in rows]


CHANNELS = ["alipay", "wechatpay", "card"]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_happy_path_on_each_channel_completes_with_balanced_ledger(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, channel: str
) -> None:
    merchant_id = await create_merchant(api, rate="0.05")
    order = await create_order(api, merchant_id, channel=channel)
    assert order["status"] == "awaiting_payment"
    assert order["amounts"] == {"total": 7498, "discount": 0, "payable": 7498}
    assert order["payment"]["checkout_url"].startswith(system.sandbox_url)
    assert (order["payment"]["qr_payload"] is not None) == (channel != "card")

    await pay(sandbox, order["id"])
    done = await wait_status(api, order["id"], "completed")

    fee_rate = {"alipay": 6, "wechatpay": 6, "card": 29}[channel]  # per mille
    fee = (7498 * fee_rate * 2 + 1000) // 2000  # half-up of 7498 * rate
    commission = (7498 * 5 * 2 + 100) // 200
    assert done["split"] == {
        "channel_fee": fee,
        "commission": commission,
        "merchant_net": 7498 - fee - commission,
    }
    postings = _postings(system, order["id"])
    assert sorted(amount for _, _, amount in postings) == sorted(
        [7498, -fee, -commission, -(7498 - fee - commission)]
    )
    assert done["payment"]["status"] == "paid"
    with Session(system.engine) as session:  # completed: the merchant's share is available
        assert order_breakdown(session, order["id"])["merchant"] == 7498 - fee - commission
        available = account_balance(
            session, account_id(AccountKind.MERCHANT_AVAILABLE, merchant_id, "CNY")
        )
        assert available == 7498 - fee - commission
        assert (
            account_balance(session, account_id(AccountKind.MERCHANT_PENDING, merchant_id, "CNY"))
            == 0
        )


def _readme_history_lengths() -> tuple[int, int]:
    """The counts the README gives operators reading an order in the Temporal UI."""
    readme = (stack.ROOT / "README.md").read_text()
    found = re.search(
        r"the happy path is (\d+) history events.*?and (\d+) when the buyer", readme, re.S
    )
    assert found, "the README no longer says how long a happy order's history is"
    return int(found.group(1)), int(found.group(2))


async def _happy_history(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client, hold: bool
) -> list[str]:
    """The event types of a happy order whose payment came before the saga's first poll
    (the README's case; here the first poll comes after a second, and a machine busy enough
    to take longer than that to pay gets up to three orders)."""
    merchant_id = await create_merchant(api)
    for _ in range(3):
        order = await create_order(api, merchant_id, auto_complete_seconds=3600 if hold else 0)
        await pay(sandbox, order["id"])
        if hold:
            await wait_status(api, order["id"], "awaiting_receipt")
            confirmed = await api.post(f"/v1/orders/{order['id']}/confirm-receipt")
            assert confirmed.status_code == 200, confirmed.text
        handle = temporal.get_workflow_handle(order_workflow_id(order["id"]))
        await handle.result()
        events = [EventType.Name(e.event_type)[11:] async for e in handle.fetch_history_events()]
        signalled = "WORKFLOW_EXECUTION_SIGNALED" in events
        if signalled and "TIMER_FIRED" not in events[: events.index("WORKFLOW_EXECUTION_SIGNALED")]:
            return events
    raise AssertionError("the first poll came before the payment three times: " + str(events))


async def test_happy_path_histories_are_as_long_as_the_readme_says(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    at_once, held = await asyncio.gather(
        _happy_history(api, sandbox, temporal, hold=False),
        _happy_history(api, sandbox, temporal, hold=True),
    )
    without_hold, with_hold = _readme_history_lengths()
    assert len(at_once) == without_hold, " ".join(at_once)
    assert len(held) == with_hold, " ".join(held)


async def test_search_attributes_follow_the_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel="wechatpay")
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    query = (
        f"MerchantId = '{merchant_id}' AND OrderStatus = 'completed' "
        "AND PaymentChannel = 'wechatpay'"
    )

    async def matching() -> list[str]:
        return [wf.id async for wf in temporal.list_workflows(query)]

    found = await wait_for(matching, lambda ids: len(ids) == 1, "visibility to catch up")
    assert found == [order_workflow_id(order["id"])]


async def test_query_handler_reports_steps_and_split(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    handle = temporal.get_workflow_handle(order_workflow_id(order["id"]))
    waiting = await handle.query(OrderWorkflow.view)
    assert waiting.status == "awaiting_payment"
    assert waiting.steps_done == ("record_order", "create_payment")
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    done = await handle.query(OrderWorkflow.view)
    assert done.steps_done[-4:] == ("record_payment", "settle", "notify", "release_funds")
    assert done.split is not None and done.split.payable_amount == 7498
    assert done.released_amount == done.split.merchant_net_amount


@pytest.mark.parametrize("channel", CHANNELS)
async def test_unpaid_order_closes_at_timeout_and_channel_is_closed(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, channel: str
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel=channel, payment_timeout_seconds=1)
    closed = await wait_status(api, order["id"], "closed")
    assert closed["close_reason"] == "payment_timeout"
    assert closed["payment"]["status"] == "closed"
    at_channel = await sandbox.post(f"/control/payments/{order['id']}/pay", json={})
    assert at_channel.status_code == 409  # the channel no longer takes money for it
    assert _postings(system, order["id"]) == []


@pytest.mark.parametrize("channel", CHANNELS)
async def test_lost_notification_is_recovered_by_querying_the_channel(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, channel: str
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel=channel, payment_timeout_seconds=20)
    await pay(sandbox, order["id"], notify="drop")
    done = await wait_status(api, order["id"], "completed", timeout=15)
    assert done["payment"]["channel_txn_id"] is not None
    deliveries = await sandbox.get(f"/control/payments/{order['id']}/deliveries")
    assert deliveries.json() == []  # the channel never told us: we asked it


@pytest.mark.parametrize("channel", CHANNELS)
async def test_duplicate_notifications_settle_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, channel: str
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel=channel)
    await pay(sandbox, order["id"], notify="duplicate")

    async def delivered() -> list[dict[str, object]]:
        response = await sandbox.get(f"/control/payments/{order['id']}/deliveries")
        return [d for d in response.json() if d["accepted"]]

    acked = await wait_for(delivered, lambda d: len(d) >= 2, "both copies to be acknowledged")
    assert len({d["event_id"] for d in acked}) == 1
    await wait_status(api, order["id"], "completed")
    assert len({entry for entry, _, _ in _postings(system, order["id"])}) == 1


async def test_concurrent_notifications_settle_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])

    # Replay the stored raw notification many times at once, as a retrying channel would.
    async def stored_raw() -> list[str]:
        from db.tables import ChannelNotification

        with Session(system.engine) as session:
            rows = session.exec(
                select(ChannelNotification.raw_body).where(
                    ChannelNotification.order_id == order["id"]
                )
            ).all()
            return list(rows)

    await wait_for(stored_raw, lambda rows: len(rows) == 1, "the notification to arrive")
    resend = await sandbox.post(f"/control/payments/{order['id']}/resend", json={"times": 8})
    if resend.status_code == 404:  # no resend control: send duplicates by paying again
        await asyncio.gather(*(pay(sandbox, order["id"]) for _ in range(4)))
    await wait_status(api, order["id"], "completed")
    entries = {entry for entry, _, _ in _postings(system, order["id"])}
    assert entries == {f"{order['id']}:settlement"}


@pytest.mark.parametrize("channel", CHANNELS)
async def test_declined_payment_closes_the_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, channel: str
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel=channel)
    response = await sandbox.post(f"/control/payments/{order['id']}/decline", json={})
    assert response.status_code == 200, response.text
    closed = await wait_status(api, order["id"], "closed")
    assert closed["close_reason"] == "payment_declined"


async def test_cancel_before_payment_closes_at_channel(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    response = await api.post(f"/v1/orders/{order['id']}/cancel", json={"reason": "changed mind"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["close_reason"] == "changed mind"
    channel = await sandbox.post(f"/control/payments/{order['id']}/pay", json={})
    assert channel.status_code == 409
    again = await api.post(f"/v1/orders/{order['id']}/cancel")
    assert again.status_code == 200  # cancelling twice is harmless


async def test_cancel_after_payment_is_refused(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    response = await api.post(f"/v1/orders/{order['id']}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "order_not_cancellable"
    assert (await get_order(api, order["id"]))["status"] == "completed"


async def test_payment_after_close_is_refunded_at_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, payment_timeout_seconds=1)
    await wait_status(api, order["id"], "closed")
    # The channel takes the buyer's money anyway (a stale QR code, say).
    await pay(sandbox, order["id"], force=True)

    refund = await one_succeeded_refund(system.engine, order["id"])
    assert refund.amount == 7498 and refund.reason == "late_payment"
    assert (await get_order(api, order["id"]))["status"] == "closed"
    assert _postings(system, order["id"]) == []


async def test_payment_after_cancel_is_refunded_at_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    response = await api.post(f"/v1/orders/{order['id']}/cancel")
    assert response.status_code == 200
    await pay(sandbox, order["id"], force=True, notify="duplicate")

    refund = await one_succeeded_refund(system.engine, order["id"])
    assert refund.reason == "late_payment"


async def test_settlement_refused_for_suspended_merchant_is_compensated(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    suspended = await api.post(f"/v1/merchants/{merchant_id}/suspend")
    assert suspended.status_code == 200
    await pay(sandbox, order["id"])
    refunded = await wait_status(api, order["id"], "refunded")
    assert refunded["refunded_amount"] == 7498
    assert "suspended" in (refunded["close_reason"] or "")
    refunds = order_refunds(system.engine, order["id"])
    assert [(r.reason, r.status, r.amount) for r in refunds] == [
        ("compensation", "succeeded", 7498)
    ]
    assert _postings(system, order["id"]) == []  # settlement was refused: nothing posted


async def test_close_that_finds_the_buyer_paid_completes_the_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, payment_timeout_seconds=1)
    # The buyer pays, the notification is lost and the poll at the deadline fails twice:
    # only the close tells us, by refusing because the payment is already paid. (The
    # fault comes first: a poll that found the payment before it would end the test.)
    fault = await sandbox.post(f"/control/faults/{order['id']}", json={"api_failures": 2})
    assert fault.status_code == 200, fault.text
    await pay(sandbox, order["id"], notify="drop")
    done = await wait_status(api, order["id"], "completed")
    assert done["payment"]["channel_txn_id"] is not None
    view = await temporal.get_workflow_handle(order_workflow_id(order["id"])).query(
        OrderWorkflow.view
    )
    assert "close_payment" in view.steps_done


async def test_refused_compensation_waits_visibly_for_ops_then_finishes(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await api.post(f"/v1/merchants/{merchant_id}/suspend")
    refusing = await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "fail"})
    assert refusing.status_code == 200, refusing.text
    await pay(sandbox, order["id"])

    stuck = await wait_status(api, order["id"], "compensation_failed")
    assert stuck["needs_review"] is True
    query = f"OrderStatus = 'compensation_failed' AND MerchantId = '{merchant_id}'"

    async def visible() -> list[str]:
        return [wf.id async for wf in temporal.list_workflows(query)]

    await wait_for(visible, lambda ids: len(ids) == 1, "ops to see the stuck order")

    # Ops sorts it out with the channel, then asks the saga to try again.
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "succeed"})
    handle = temporal.get_workflow_handle(order_workflow_id(order["id"]))
    await handle.signal(OrderWorkflow.retry_compensation)
    refunded = await wait_status(api, order["id"], "refunded")
    assert refunded["refunded_amount"] == 7498


async def test_orders_racing_for_a_single_use_coupon_get_one_each_answer(
    api: httpx.AsyncClient,
) -> None:
    merchant_id = await create_merchant(api)
    code = f"RACE{time.time_ns()}"
    created = await api.post(
        "/v1/coupons",
        json={"code": code, "kind": "percentage", "percent_off": "0.10", "max_redemptions": 1},
    )
    assert created.status_code == 201, created.text
    body = order_body(merchant_id, coupon_code=code)
    responses = await asyncio.gather(
        *(
            api.post("/v1/orders", json=body, headers={"Idempotency-Key": f"race-{code}-{i}"})
            for i in range(4)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 400, 400, 400], [r.text for r in responses]
    refused = [r.json()["error"]["code"] for r in responses if r.status_code == 400]
    assert set(refused) == {"coupon_already_used"}
    coupon = await api.get(f"/v1/coupons/{code}")
    assert coupon.json()["redeemed"] == 1


async def test_refused_late_payment_refund_is_flagged_for_ops(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, payment_timeout_seconds=1)
    await wait_status(api, order["id"], "closed")
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "fail"})
    await pay(sandbox, order["id"], force=True)
    flagged = await wait_for(
        lambda: get_order(api, order["id"]), lambda o: o["needs_review"], "the review flag"
    )
    assert "late payment refund refused" in flagged["review_reason"]
    assert flagged["status"] == "closed"


async def test_compensation_refund_pending_at_the_channel_is_awaited_with_timers(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "pending"})
    await api.post(f"/v1/merchants/{merchant_id}/suspend")
    await pay(sandbox, order["id"])

    async def refunds() -> list[Refund]:
        return order_refunds(system.engine, order["id"])

    [pending] = await wait_for(refunds, lambda r: len(r) == 1, "the compensation refund")
    assert (await get_order(api, order["id"]))["status"] == "refunding"
    completed = await sandbox.post(f"/control/refunds/{pending.id}/complete")
    assert completed.status_code == 200, completed.text
    await wait_status(api, order["id"], "refunded")
    handle = temporal.get_workflow_handle(order_workflow_id(order["id"]))
    await handle.result()
    events = [event async for event in handle.fetch_history_events()]
    assert len(events) < 60  # a few timers and checks, not a retry per second
