"""Logs: one JSON object per line, each saying which service, request, workflow and order
it is about; an expected refusal (an over-refund) leaves no warning and no traceback; no
line per outgoing HTTP request. The console format for `make run` is one short line."""

from __future__ import annotations

import gc
import json
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.services.updates import update_with_start
from domain.keys import refund_workflow_id
from domain.refunds import RefundAcceptance
from logs import REQUEST_ID, configure_logging
from tests.conftest import System
from tests.support import create_merchant, create_order, pay, post_refund, wait_status
from workflows.refund import RefundWorkflow

# The Temporal SDK's core is Rust: a panic in one of its threads (seen during a worker's
# graceful stop with local activities in flight) is reported by Rust's own hook on stderr,
# below Python's logging. Those reports, and only those, are not ours to shape.
_RUST_PANIC = re.compile(r"^thread '.*' \(\d+\) panicked at ")


def _lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the log parsed as JSON (or the test fails), Rust's panic reports
    left out: each runs from its "thread ... panicked at" line to its "note:" line."""
    parsed, in_panic = [], False
    for line in path.read_text().splitlines():
        if _RUST_PANIC.match(line):
            in_panic = True
        elif in_panic:
            in_panic = not line.startswith("note: ")
        elif line.strip():
            parsed.append(json.loads(line))
    return parsed


async def test_log_lines_are_json_about_their_order_and_refusals_are_quiet(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    worker_log, api_log = system.log_dir / "worker.log", system.log_dir / "api.log"
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    before = len(_lines(worker_log))
    refund = await post_refund(api, order["id"], amount=10**6)
    assert refund.status_code == 400, refund.text  # more than was paid: the saga refuses
    assert refund.headers["X-Request-ID"]

    lines = _lines(worker_log)
    for line in [*lines, *_lines(api_log)]:
        assert {"time", "level", "service", "logger", "message"} <= set(line), line
    assert {line["service"] for line in lines} == {"worker"}
    refusal = [line for line in lines[before:] if line.get("workflow_id", "").startswith("refund-")]
    loud = [line for line in refusal if line["level"] != "INFO" or "exc_info" in line]
    assert loud == [], loud
    outgoing = [line for line in lines if line["message"].startswith("HTTP Request:")]
    assert outgoing == [], outgoing[:1]


def test_the_console_format_is_one_short_line(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("worker", "console")
        logging.getLogger("paysaga.test").info("settled %s", "ord_1")
        logging.getLogger("httpx").info("HTTP Request: POST http://x 200 OK")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    printed = capsys.readouterr().err.splitlines()
    assert len(printed) == 1 and printed[0].endswith(" worker INFO settled ord_1"), printed


def test_a_json_line_names_its_request_workflow_and_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    token = REQUEST_ID.set("req-1")
    try:
        configure_logging("worker", "json")
        activity = {"workflow_id": "order-ord_1", "activity_type": "settle_order"}
        logging.getLogger("paysaga.test").warning("slow", extra={"temporal_activity": activity})
    finally:
        REQUEST_ID.reset(token)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = json.loads(capsys.readouterr().err)
    assert line["level"] == "WARNING" and line["service"] == "worker"
    assert (line["request_id"], line["workflow_id"], line["order_id"]) == (
        "req-1",
        "order-ord_1",
        "ord_1",
    )
    assert "trace_id" not in line  # no trace is current: the field is left out, not null


async def test_a_finished_refund_asked_again_logs_nothing(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    temporal: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    path, key = f"/v1/orders/{order['id']}/refunds", {"Idempotency-Key": f"again-{order['id']}"}
    first = await api.post(path, json={"amount": 100}, headers=key)
    assert first.status_code == 201, first.text
    handle = temporal.get_workflow_handle_for(
        RefundWorkflow.run, refund_workflow_id(first.json()["id"])
    )
    await handle.result()
    again = await api.post(path, json={"amount": 100}, headers=key)
    assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])

    # What the API does for that repeat, here where asyncio's own log can be read: before,
    # the start operation kept its copy of WorkflowAlreadyStartedError unread, and asyncio
    # logged it ("Future exception was never retrieved") at ERROR with a 46-line traceback
    # when the operation was collected.
    operation = WithStartWorkflowOperation(
        RefundWorkflow.run,
        await handle.query(RefundWorkflow.ask),
        id=handle.id,
        task_queue=(await handle.describe()).task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    with pytest.raises(WorkflowAlreadyStartedError):
        await update_with_start(
            temporal, RefundWorkflow.await_acceptance, RefundAcceptance(), operation
        )
    del operation
    gc.collect()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
