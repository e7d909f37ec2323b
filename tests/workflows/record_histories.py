"""Records the histories `test_replay.py` replays, one per path the sagas can take.

    .venv/bin/python -m tests.workflows.record_histories            # all of them
    .venv/bin/python -m tests.workflows.record_histories -k refund  # some (pytest's -k)

Each test here drives one path through a real stack (the session `system` of
tests/conftest.py, SQLite only), waits until the workflow has ended, writes its
history into tests/workflows/histories/<name>.json as `WorkflowHistory.to_json()`
writes it, and replays it on today's code. A workflow that continued as new is
written run by run (<name>_run1.json, ...): a replay takes one run.

`make test` does not run this module (its name is not test_*.py): record again only
when a path is added, or when a change to a saga is meant to leave old orders behind
(then keep the old file too, renamed: it is the old branch of the `workflow.patched`
the change adds). `order_completed.json` and `order_closed.json` were recorded before
any patch and are never recorded again; nor are the `_saga_v1` files (orders started
before the API carried the saga version, whose markers choose their branches) or the
`_saga_v2` files (orders of version 2, before the steps were merged): see
workflows/order/versions.py. Every order recorded here now is of today's version; a new
version keeps the histories it changes, renamed `_saga_v{N}`, and records them anew.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from api.services.refund_requests import refund_id_for
from db.tables import Refund
from domain.keys import (
    late_payment_workflow_id,
    merchant_settlement_workflow_id,
    order_workflow_id,
    refund_workflow_id,
    saga_refund_workflow_id,
    settlement_run_workflow_id,
    unanswered_payouts_run_id,
    webhook_event_id,
    webhook_workflow_id,
)
from domain.polling import PollTimings
from domain.reconciliation import (
    BillWait,
    ReconciliationDay,
    ReconciliationInput,
    reconciliation_workflow_id,
)
from domain.refunds import RefundAsk, Requester
from domain.settlement import SettlementRunInput
from domain.sweeps import ChannelSweepsDue
from tests.conftest import System
from tests.pages.support import Browser
from tests.receiver import Receiver
from tests.support import (
    create_merchant,
    create_order,
    merchant_body,
    order_refunds,
    pay,
    post_refund,
    settings_from_env,
    wait_for,
    wait_status,
)
from tests.workflows.conftest import OwnWorker
from tests.workflows.run_histories import run_histories
from tests.workflows.test_ending_told_stands import closing_task_lost_to_a_payment
from tests.workflows.test_late_payment_repeats import repeat_late_notice
from tests.workflows.test_saga_refund_child import pending_compensation
from tests.workflows.test_settlement_handover import (
    ended_settlement_then_paid_order,
    pending_payout_then_later_run,
)
from tests.workflows.test_settlement_look_back import looking_back, next_day, stranded_payout
from worker import WORKFLOWS
from workflows.channel_sweep import ChannelSweepsDueWorkflow
from workflows.order import OrderWorkflow
from workflows.reconciliation import ReconciliationDayWorkflow, ReconciliationWorkflow
from workflows.sweep_schedule import start_channel_sweep

HISTORIES = Path(__file__).parent / "histories"
NEW_LINES = [{"sku": "tea-001", "name": "Oolong tea", "quantity": 3, "unit_amount": 1999}]


@pytest.fixture(autouse=True)
def _sqlite_only(system: System) -> None:
    if system.backend != "sqlite":
        pytest.skip("histories are recorded once, from the SQLite system")


async def record(
    temporal: Client, workflow_id: str, name: str, first_run_id: str | None = None
) -> None:
    """Wait for the workflow to end, then write each of its runs (from `first_run_id`, or
    the latest one only) and replay it."""
    handle = temporal.get_workflow_handle(workflow_id)
    await handle.result()
    first = first_run_id or (await handle.describe()).run_id
    runs = await run_histories(temporal, workflow_id, first)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    for number, events in enumerate(runs, start=1):
        history = WorkflowHistory(workflow_id, events)
        await replayer.replay_workflow(history)
        stem = name if len(runs) == 1 else f"{name}_run{number}"
        (HISTORIES / f"{stem}.json").write_text(history.to_json() + "\n")


async def _refunds_done(system: System, order_id: str, count: int = 1) -> list[Refund]:
    async def refunds() -> list[Refund]:
        return order_refunds(system.engine, order_id)

    return await wait_for(
        refunds,
        lambda r: len(r) == count and all(x.status == "succeeded" for x in r),
        f"{count} succeeded refund(s) of {order_id}",
    )


@pytest.mark.parametrize("channel", ["alipay", "wechatpay", "card"])
async def test_paid_and_completed_at_once(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client, channel: str
) -> None:
    order = await create_order(api, await create_merchant(api), channel=channel)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    await record(temporal, order_workflow_id(order["id"]), f"order_{channel}_completed")


async def test_paid_then_receipt_confirmed(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    order = await create_order(api, await create_merchant(api), auto_complete_seconds=3600)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "awaiting_receipt")
    confirmed = await api.post(f"/v1/orders/{order['id']}/confirm-receipt")
    assert confirmed.status_code == 200, confirmed.text
    await record(temporal, order_workflow_id(order["id"]), "order_receipt_confirmed")


async def test_closed_by_timeout(api: httpx.AsyncClient, temporal: Client) -> None:
    order = await create_order(api, await create_merchant(api), payment_timeout_seconds=1)
    await wait_status(api, order["id"], "closed")
    await record(temporal, order_workflow_id(order["id"]), "order_timeout_closed")


async def test_declined(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    order = await create_order(api, await create_merchant(api))
    declined = await sandbox.post(f"/control/payments/{order['id']}/decline", json={})
    assert declined.status_code == 200, declined.text
    await wait_status(api, order["id"], "closed")
    await record(temporal, order_workflow_id(order["id"]), "order_declined")


async def test_decline_found_by_polling(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    """The decline's notification is lost: the poll finds the payment closed at Alipay."""
    order = await create_order(api, await create_merchant(api))
    body = {"notify": "drop"}
    declined = await sandbox.post(f"/control/payments/{order['id']}/decline", json=body)
    assert declined.status_code == 200, declined.text
    await wait_status(api, order["id"], "closed", timeout=15)
    await record(temporal, order_workflow_id(order["id"]), "order_decline_found_by_poll")


async def test_cancelled_by_the_buyer(api: httpx.AsyncClient, temporal: Client) -> None:
    order = await create_order(api, await create_merchant(api))
    cancelled = await api.post(f"/v1/orders/{order['id']}/cancel", json={"reason": "changed"})
    assert cancelled.status_code == 200, cancelled.text
    await record(temporal, order_workflow_id(order["id"]), "order_cancelled")


async def test_modified_then_paid(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    order = await create_order(api, await create_merchant(api), channel="wechatpay")
    modified = await api.post(f"/v1/orders/{order['id']}/modify", json={"lines": NEW_LINES})
    assert modified.status_code == 200, modified.text
    await pay(sandbox, modified.json()["payment"]["reference"])
    await wait_status(api, order["id"], "completed")
    await record(temporal, order_workflow_id(order["id"]), "order_modified_paid")


async def test_compensated(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    assert (await api.post(f"/v1/merchants/{merchant_id}/suspend")).status_code == 200
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "refunded")
    await record(temporal, order_workflow_id(order["id"]), "order_compensated")


async def test_compensation_refund_pending_then_done(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "pending"})
    assert (await api.post(f"/v1/merchants/{merchant_id}/suspend")).status_code == 200
    await pay(sandbox, order["id"])

    async def refunds() -> list[Refund]:
        return order_refunds(system.engine, order["id"])

    [pending] = await wait_for(refunds, lambda r: len(r) == 1, "the compensation refund")
    completed = await sandbox.post(f"/control/refunds/{pending.id}/complete")
    assert completed.status_code == 200, completed.text
    await wait_status(api, order["id"], "refunded")
    await record(temporal, order_workflow_id(order["id"]), "order_compensation_refund_pending")
    # The refund was asked and awaited in the order's child (workflows.saga_refund).
    await record(temporal, saga_refund_workflow_id(pending.id), "saga_refund_pending_then_done")


async def test_compensation_refund_child_continued_as_new(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """The refund's child checks once per run (the order's own timings say so)."""
    pending = await pending_compensation(api, sandbox, system, temporal)

    async def runs() -> int:
        return len(await run_histories(temporal, pending.child_id, pending.child_first_run))

    await wait_for(runs, lambda n: n >= 2, "the refund's child to continue as new")
    completed = await sandbox.post(f"/control/refunds/{pending.refund_id}/complete")
    assert completed.status_code == 200, completed.text
    first = pending.child_first_run
    await record(temporal, pending.child_id, "saga_refund_continued_as_new", first)


async def test_compensation_failed_then_retried(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    assert (await api.post(f"/v1/merchants/{merchant_id}/suspend")).status_code == 200
    behaviour = f"/control/refund-behaviour/{order['id']}"
    assert (await sandbox.post(behaviour, json={"mode": "fail"})).status_code == 200
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "compensation_failed")
    assert (await sandbox.post(behaviour, json={"mode": "succeed"})).status_code == 200
    handle = temporal.get_workflow_handle(order_workflow_id(order["id"]))
    await handle.signal(OrderWorkflow.retry_compensation)
    await wait_status(api, order["id"], "refunded")
    await record(temporal, handle.id, "order_compensation_retried")


async def test_late_payment_after_close(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """The saga has ended: LatePaymentRefundWorkflow gives the money back."""
    order = await create_order(api, await create_merchant(api), payment_timeout_seconds=1)
    await wait_status(api, order["id"], "closed")
    await pay(sandbox, order["id"], force=True)
    [refund] = await _refunds_done(system, order["id"])
    assert refund.channel_txn_id is not None
    workflow_id = late_payment_workflow_id(refund.channel, refund.channel_txn_id)
    await record(temporal, workflow_id, "late_payment_refund")


async def test_closing_task_lost_to_a_payment(
    own_worker: OwnWorker, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    """The order stays closed as it was told, and the payment goes back as a late one."""
    _, handle = await closing_task_lost_to_a_payment(own_worker, api, sandbox)
    await record(own_worker.client, handle.id, "order_closed_task_lost_payment_given_back")


async def test_replaced_attempt_paid_during_the_receipt_hold(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    order = await create_order(api, await create_merchant(api), auto_complete_seconds=3600)
    modified = await api.post(f"/v1/orders/{order['id']}/modify", json={"lines": NEW_LINES})
    assert modified.status_code == 200, modified.text
    await pay(sandbox, modified.json()["payment"]["reference"])
    await wait_status(api, order["id"], "awaiting_receipt")
    await pay(sandbox, order["id"], force=True)  # the first attempt's stale QR code
    await _refunds_done(system, order["id"])
    confirmed = await api.post(f"/v1/orders/{order['id']}/confirm-receipt")
    assert confirmed.status_code == 200, confirmed.text
    await record(temporal, order_workflow_id(order["id"]), "order_hold_late_payment_refunded")


async def test_late_payment_notice_repeated_in_one_batch(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    order_id, handle = await repeat_late_notice(api, sandbox, temporal)
    confirmed = await api.post(f"/v1/orders/{order_id}/confirm-receipt")
    assert confirmed.status_code == 200, confirmed.text
    await record(temporal, handle.id, "order_late_payment_repeat_given_back_once")


async def test_refund_pending_then_done(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    order = await create_order(api, await create_merchant(api))
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "pending"})
    refund = await post_refund(api, order["id"], amount=700)
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    handle = temporal.get_workflow_handle(refund_workflow_id(refund_id))

    async def polled() -> int:
        events = [e async for e in handle.fetch_history_events()]
        return sum(1 for e in events if e.HasField("timer_fired_event_attributes"))

    await wait_for(polled, lambda n: n >= 1, "the refund's first poll")
    completed = await sandbox.post(f"/control/refunds/{refund_id}/complete")
    assert completed.status_code == 200, completed.text
    await record(temporal, handle.id, "refund_pending_then_done")


async def test_refund_that_continued_as_new(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    order = await create_order(api, await create_merchant(api))
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "pending"})
    ask = RefundAsk(
        refund_id=refund_id_for(order["id"], "continued-as-new"),
        order_id=order["id"],
        requested_by=Requester.OPERATOR,
        amount=700,
        polling=PollTimings(refund_first_ms=100, max_interval_ms=100, polls_per_run=1),
    )
    handle = await temporal.start_workflow(
        "RefundWorkflow", ask, id=refund_workflow_id(ask.refund_id), task_queue=system.task_queue
    )
    first = handle.first_execution_run_id or ""

    async def runs() -> int:
        return len(await run_histories(temporal, handle.id, first))

    await wait_for(runs, lambda n: n >= 2, "the refund to continue as new")
    completed = await sandbox.post(f"/control/refunds/{ask.refund_id}/complete")
    assert completed.status_code == 200, completed.text
    await record(temporal, handle.id, "refund_continued_as_new", first)


async def test_method_chosen_then_switched(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """An order without a channel: the buyer chooses WeChat Pay on the hosted checkout,
    switches to card, a stale payment of the closed attempt is given back, then card pays."""
    order = await create_order(api, await create_merchant(api), channel=None)
    link = urlsplit(order["checkout_url"])
    token = link.query.removeprefix("t=")
    buyer = Browser(system.api_url)
    for channel in ("wechatpay", "card"):
        chosen = await buyer.post(f"{link.path}/method", {"t": token, "channel": channel})
        assert chosen.status_code == 303, chosen.text
    first, second = (await api.get(f"/v1/orders/{order['id']}/payments")).json()["data"]
    await pay(sandbox, first["reference"], force=True)
    await _refunds_done(system, order["id"])
    await pay(sandbox, second["reference"])
    await wait_status(api, order["id"], "completed")
    await record(temporal, order_workflow_id(order["id"]), "order_method_chosen_switched")


async def test_merchant_settled(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    today = datetime.now(UTC).date()
    settled = await api.post(f"/v1/merchants/{merchant_id}/settlements", json={"day": str(today)})
    assert settled.status_code == 202, settled.text
    workflow_id = merchant_settlement_workflow_id(merchant_id, today)
    await record(temporal, workflow_id, "merchant_settlement")


async def test_settlement_run(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    today = datetime.now(UTC).date()
    body = {"day": str(today), "merchant_ids": [merchant_id]}
    started = await api.post("/v1/settlements/runs", json=body)
    assert started.status_code == 202, started.text
    run_id = settlement_run_workflow_id(today, (merchant_id,))
    await record(temporal, run_id, "settlement_run")
    workflow_id = merchant_settlement_workflow_id(merchant_id, today)
    await record(temporal, workflow_id, "merchant_settlement_of_a_run")


async def test_settlement_run_restarts_an_ended_settlement(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    """The run finds the merchant's settlement of the day ended (before the merchant sold
    anything): its signal fails, and it starts a new run of that settlement."""
    _, run_id = await ended_settlement_then_paid_order(api, sandbox, temporal)
    await record(temporal, run_id, "settlement_run_restarts_ended_settlement")


async def test_settlement_run_hands_over_a_pending_payout(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    """A later run of the day signals the unanswered payout to the settlement that waits
    for the bank, which asks the bank for it no second time."""
    merchant, _, later = await pending_payout_then_later_run(api, sandbox, temporal)
    await record(temporal, later, "settlement_run_hands_over")
    today = datetime.now(UTC).date()
    settled = merchant_settlement_workflow_id(merchant, today)
    await record(temporal, settled, "merchant_settlement_handed_over")


async def test_settlement_run_looks_back(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """The next day's run finds a payout no settlement drove and runs its day again for it
    (that run recorded too); a run as the Schedule starts it (no day: yesterday's) looks
    back by itself, finding nothing here."""
    stranded = await stranded_payout(api, sandbox, system, temporal)
    run_id = f"settlement-run-looking-back-{stranded.merchant}"
    progress = await looking_back(system, temporal, run_id, next_day(stranded))
    assert progress.days_run_again == (stranded.day,)
    await record(temporal, run_id, "settlement_run_looks_back")
    again = unanswered_payouts_run_id(run_id, stranded.day)
    await record(temporal, again, "settlement_run_unanswered_only")
    scheduled_id = f"settlement-run-as-scheduled-{stranded.merchant}"
    as_scheduled = SettlementRunInput(merchant_ids=(stranded.merchant,))
    assert (await looking_back(system, temporal, scheduled_id, as_scheduled)).days_run_again == ()
    await record(temporal, scheduled_id, "settlement_run_scheduled")


async def test_quoted_order_paid_and_refunded(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """A CNY shop's order paid by card in USD at a quote, then half refunded."""
    order = await create_order(
        api, await create_merchant(api), channel="card", presentment_currency="USD"
    )
    assert order["quote"]["presentment_currency"] == "USD"
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    await record(temporal, order_workflow_id(order["id"]), "order_card_quoted_completed")
    response = await post_refund(api, order["id"], amount=order["amounts"]["payable"] // 2)
    assert response.status_code == 201, response.text
    await _refunds_done(system, order["id"])
    await record(temporal, refund_workflow_id(response.json()["id"]), "refund_quoted_done")


async def test_merchant_webhook_delivered(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client, receiver: Receiver
) -> None:
    inbox = receiver.inbox()
    body = merchant_body(name="Tea shop") | {"webhook_url": inbox.url}
    created = await api.post("/v1/merchants", json=body)
    assert created.status_code == 201, created.text
    order = await create_order(api, created.json()["id"])
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    event_id = webhook_event_id(order["id"], "order.paid")
    await record(temporal, webhook_workflow_id(event_id), "merchant_webhook_delivered")


async def test_channel_day_swept(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """The card's day at the bank, posted; then a daily run that finds the card's day
    swept already and starts Alipay's."""
    order = await create_order(api, await create_merchant(api), channel="card")
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    today = datetime.now(UTC).date()
    settled = await sandbox.post(f"/control/sweeps/card/{today.isoformat()}")
    assert settled.status_code == 200, settled.text
    settings = settings_from_env(system.env)
    handle = await start_channel_sweep(temporal, settings, "card", today)
    await record(temporal, handle.id, "channel_sweep_posted")
    due = ChannelSweepsDue(lag_days={"alipay": 0, "card": 0}, polling=settings.poll, checks=1)
    started = await temporal.start_workflow(
        ChannelSweepsDueWorkflow.run,
        due,
        id=f"channel-sweeps-due-{today}-{secrets.token_hex(4)}",
        task_queue=settings.task_queue,
    )
    await record(temporal, started.id, "channel_sweeps_due")


async def test_card_day_reconciled(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """The card's bill of today with one amount changed: a run finds it; then the daily
    run starts the card's run of the day again."""
    order = await create_order(api, await create_merchant(api), channel="card")
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    day = datetime.now(UTC).date()
    bill = f"/control/bills/card/{day.isoformat()}"
    plant = {"kind": "amount_changed", "reference": order["id"], "amount": 5000}
    assert (await sandbox.post(f"{bill}/discrepancies", json=plant)).status_code == 200
    assert (await sandbox.post(f"{bill}/publish")).status_code in (200, 204)
    try:
        wait = BillWait(first_retry_seconds=1, max_retry_seconds=1, deadline_seconds=10)
        run = await temporal.start_workflow(
            ReconciliationWorkflow.run,
            ReconciliationInput(channel="card", day=day, wait=wait),
            id=f"reconciliation-card-{day}-{secrets.token_hex(4)}",
            task_queue=system.task_queue,
        )
        await record(temporal, run.id, "reconciliation_run")
        daily = await temporal.start_workflow(
            ReconciliationDayWorkflow.run,
            ReconciliationDay(day=day, channels=("card",), wait=wait),
            id=f"reconciliation-day-{day}-{secrets.token_hex(4)}",
            task_queue=system.task_queue,
        )
        await record(temporal, daily.id, "reconciliation_day")
        await temporal.get_workflow_handle(reconciliation_workflow_id("card", day)).result()
    finally:
        assert (await sandbox.delete(f"{bill}/discrepancies")).status_code == 204


if __name__ == "__main__":
    os.environ.pop("TEST_DATABASE_URL", None)  # one backend: the histories are the same
    arguments = ["-p", "no:cacheprovider", "-n", "0", "-q", __file__, *sys.argv[1:]]
    raise SystemExit(pytest.main(arguments))
