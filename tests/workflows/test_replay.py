"""Determinism: today's workflow code must replay the histories of sagas already running.

tests/workflows/histories/ holds a recorded history for every path the sagas can take
(each channel's payment, the receipt hold, timeout, decline, cancel, modification, choice
of method, compensation and its retry, late payments, refunds pending and continued as
new, a merchant's settlement, a quoted order, a merchant webhook's delivery, a channel's
swept day and the daily sweeps, a reconciliation run and the daily one: every workflow the
worker runs has one); a change that would break sagas in flight (without
`workflow.patched`) fails here. Histories of this session's own sagas are replayed too.

Record them again (a real stack, SQLite, about a minute):

    .venv/bin/python -m tests.workflows.record_histories            # all of them
    .venv/bin/python -m tests.workflows.record_histories -k refund  # some (pytest's -k)

A new path gets a test there; a change meant to leave old sagas on their old branch keeps
the old files (renamed) beside the new ones. order_completed.json and order_closed.json
were recorded before any patch: they are old branches and are never recorded again. Nor
are the `_saga_v1` files (and the rest recorded before saga version 2): orders whose
markers choose their branches, where an order of version 2 takes them without markers; nor
the `_saga_v2` files, orders of version 2 that take the steps version 3 merged
(workflows/order/versions.py).
"""

from __future__ import annotations

import ast
import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import stack
from domain.keys import merchant_settlement_workflow_id, order_workflow_id, refund_workflow_id
from domain.saga import SAGA_VERSION
from tests.support import create_merchant, create_order, pay, post_refund, wait_status
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
# Histories recorded before a patch, which take its old branch (its id is not in them): the
# first two before any patch, the `_before_` ones by the code before the patch came (a
# worktree at the patch's parent commit, its tests' system, the path driven as here).
OLD_BRANCHES = {
    "compensate-business-refusals-only": [
        "order_completed",
        "order_compensated_before_business_refusals",
    ],
    "hold-funds-until-receipt": ["order_completed"],
    "refund-late-payments-during-hold": ["order_receipt_confirmed_before_hold_refunds"],
    "payout-polls-per-run": ["merchant_settlement_before_payout_polls"],
    "settlement-run-prepares-pages": ["settlement_run_before_prepared_pages"],
    "settlement-run-looks-back": ["settlement_run_scheduled_before_look_back"],
    "refund-waits-in-child": ["order_compensation_refund_pending_before_refund_child"],
    "refund-waits-with-timers": ["order_compensated_before_refund_timers"],
    "payment-reference-underscore": ["order_modified_paid_before_underscore_references"],
    "poll-sees-channel-close": ["order_decline_lost_before_poll_sees_close"],
}


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    """One replayer for the module: replaying is CPU only, its worker is made per history."""
    return Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)


def test_replays_run_in_the_sandbox(replayer: Replayer) -> None:
    """The worker runs workflows unsandboxed (worker.py); the sandbox's refusal of a clock,
    randomness or I/O in workflow code is applied here, to every recorded path."""
    assert isinstance(replayer.config()["workflow_runner"], SandboxedWorkflowRunner)


def _history(path: Path) -> WorkflowHistory:
    """The recorded history under its own workflow id (a workflow may name its children
    after itself), or its file's name where the server recorded none."""
    text = path.read_text()
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    return WorkflowHistory.from_json(started.get("workflowId") or path.stem, text)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path, replayer: Replayer) -> None:
    await replayer.replay_workflow(_history(path))


# workflow.patched, and the order saga's way to it for patches before version 2
# (workflows/order/versions.py: its own call passes a variable, not an id).
_PATCH_CALLS = {"patched", "patched_or_v2"}


def _called(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return node.func.id if isinstance(node.func, ast.Name) else None


def _patch_ids_in_code() -> set[str]:
    """Every id the workflows pass to `workflow.patched` (or `patched_or_v2`), literally or
    by a module constant."""
    ids: set[str] = set()
    for source in (stack.ROOT / "workflows").rglob("*.py"):  # a package too
        tree = ast.parse(source.read_text())
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node) in _PATCH_CALLS:
                argument = node.args[0]
                if isinstance(argument, ast.Name) and argument.id in constants:
                    ids.add(str(constants[argument.id]))
                elif isinstance(argument, ast.Constant):
                    ids.add(str(argument.value))
    return ids


def _patch_markers(path: Path) -> set[str]:
    """The patch ids a history recorded (the SDK's core_patch markers)."""
    markers = set()
    for event in json.loads(path.read_text())["events"]:
        attributes = event.get("markerRecordedEventAttributes", {})
        if attributes.get("markerName") == "core_patch":
            [payload] = attributes["details"]["patch-data"]["payloads"]
            markers.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return markers


def test_every_patch_has_its_new_branch_recorded_and_its_old_branch_kept() -> None:
    markers = {path.stem: _patch_markers(path) for path in HISTORIES}
    patch_ids = _patch_ids_in_code()
    assert patch_ids, "no workflow.patched found: has the workflow code moved?"
    unrecorded = {p for p in patch_ids if not any(p in found for found in markers.values())}
    assert unrecorded == set(), "record a history that takes these patches' new branch"
    for patch_id, old_histories in OLD_BRANCHES.items():
        assert patch_id in patch_ids, f"{patch_id} is no longer in the code: drop it here"
        for stem in old_histories:
            assert patch_id not in markers[stem], f"{stem} takes the new branch of {patch_id}"


def _workflow_type(path: Path) -> str:
    first = json.loads(path.read_text())["events"][0]
    return str(first["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])


def test_every_workflow_the_worker_runs_has_a_recorded_history() -> None:
    recorded = {_workflow_type(path) for path in HISTORIES}
    registered = {workflow.__temporal_workflow_definition.name for workflow in WORKFLOWS}  # type: ignore[attr-defined]
    assert registered - recorded == set(), "record their paths: tests/workflows/record_histories"


def _saga_version(path: Path) -> int | None:
    """The saga version an order history was started with (None: not an order's)."""
    attributes = json.loads(path.read_text())["events"][0][
        "workflowExecutionStartedEventAttributes"
    ]
    if attributes["workflowType"]["name"] != "OrderWorkflow":
        return None
    [payload] = attributes["input"]["payloads"]
    return int(json.loads(base64.b64decode(payload["data"])).get("saga_version", 1))


def test_orders_of_each_saga_version_are_recorded() -> None:
    """Orders of every saga version keep replaying: those started before the version was
    carried (1: their markers choose their branches), version 2's (no markers) and today's
    (merged steps)."""
    versions = {_saga_version(path) for path in HISTORIES} - {None}
    assert versions == set(range(1, SAGA_VERSION + 1))


async def test_fresh_histories_replay(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client, replayer: Replayer
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
        await replayer.replay_workflow(await handle.fetch_history())


async def test_refund_and_settlement_histories_replay(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, temporal: Client, replayer: Replayer
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
        await replayer.replay_workflow(await handle.fetch_history())
