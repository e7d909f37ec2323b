"""Determinism: today's workflow code must replay the histories of orders already running.

The committed histories were recorded from a real stack; a change to the saga
that would break orders in flight (without `workflow.patched`) fails here.
Histories of this session's own orders are replayed too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.keys import merchant_settlement_workflow_id, order_workflow_id, refund_workflow_id
from tests.support import create_merchant, create_order, pay, post_refund, wait_status
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await _replayer().replay_workflow(history)


async def test_fresh_histories_replay(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    paid = await create_order(api, merchant_id)
    cancelled = await create_order(api, merchant_id)
    await pay(sandbox, paid["id"], notify="duplicate")
    assert (await api.post(f"/v1/orders/{cancelled['id']}/cancel")).status_code == 200
    await wait_status(api, paid["id"], "completed")
    for order_id in (paid["id"], cancelled["id"]):
        handle = temporal.get_workflow_handle(order_workflow_id(order_id))
        await handle.result()
        await _replayer().replay_workflow(await handle.fetch_history())


async def test_refund_and_settlement_histories_replay(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, auto_complete_seconds=3600)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "awaiting_receipt")
    refund = await post_refund(api, order["id"], amount=100)
    assert refund.status_code == 201, refund.text
    assert (await api.post(f"/v1/orders/{order['id']}/confirm-receipt")).status_code == 200
    today = datetime.now(UTC).date()
    settled = await api.post(f"/v1/merchants/{merchant_id}/settlements", json={"day": str(today)})
    assert settled.status_code == 202, settled.text
    workflow_ids = [
        order_workflow_id(order["id"]),
        refund_workflow_id(refund.json()["id"]),
        merchant_settlement_workflow_id(merchant_id, today),
    ]
    for workflow_id in workflow_ids:
        handle = temporal.get_workflow_handle(workflow_id)
        await handle.result()
        await _replayer().replay_workflow(await handle.fetch_history())
