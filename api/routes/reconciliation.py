"""Reconciliation (对账), for operators: start a past channel-day, follow a run, work the
exception queue. The daily Schedule starts yesterday's runs by itself."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from api.auth.caller import OperatorCaller
from api.deps import AppContext, ContextDep
from api.errors import InvalidRequest, NotFound
from api.idempotency import IdempotencyKey
from api.openapi_errors import error_responses
from api.reconciliation_schemas import ExceptionOut, ExceptionPage, ResolveIn, RunOut, RunStart
from api.services.reconciliation import list_exceptions, resolve, run_view, starting_view
from api.services.records import now
from domain.reconciliation import (
    DiscrepancyType,
    ExceptionStatus,
    ReconciliationInput,
    day_window,
    reconciliation_workflow_id,
)
from workflows.reconciliation import ReconciliationWorkflow

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])


@router.post("/runs", status_code=202, responses=error_responses(400, 401, 403, 413, 503))
async def start_run(
    body: RunStart, caller: OperatorCaller, context: ContextDep, idempotency_key: IdempotencyKey
) -> RunOut:
    """Reconcile a channel's finished day. A channel-day has one run: starting it again
    (with any key) re-matches it and records nothing twice."""
    _check(context, body.channel, body.day)
    await context.temporal.start_workflow(
        ReconciliationWorkflow.run,
        ReconciliationInput(
            channel=body.channel, day=body.day, wait=context.settings.reconciliation_bill_wait
        ),
        id=reconciliation_workflow_id(body.channel, body.day),
        task_queue=context.settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    view = await asyncio.to_thread(_run, context, body.channel, body.day)
    return view or starting_view(body.channel, body.day)


@router.get("/runs/{channel}/{day}", responses=error_responses(400, 401, 403, 404))
def get_run(channel: str, day: date, caller: OperatorCaller, context: ContextDep) -> RunOut:
    view = _run(context, channel, day)
    if view is None:
        raise NotFound("run_not_found", f"no reconciliation of {channel} for {day}", "day")
    return view


@router.get("/exceptions", responses=error_responses(400, 401, 403))
def get_exceptions(
    caller: OperatorCaller,
    context: ContextDep,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    day: date | None = None,
    type: DiscrepancyType | None = None,
    status: ExceptionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[str | None, Query(max_length=64)] = None,
) -> ExceptionPage:
    """The exception queue, newest first; `status=open` is what waits for an operator."""
    with context.reads() as session:
        return list_exceptions(
            session,
            channel=channel,
            day=day,
            kind=type,
            status=status,
            limit=limit,
            starting_after=starting_after,
        )


@router.post(
    "/exceptions/{exception_id}/resolve",
    responses=error_responses(400, 401, 403, 404, 409, 413),
)
def resolve_exception(
    exception_id: str,
    body: ResolveIn,
    caller: OperatorCaller,
    context: ContextDep,
    idempotency_key: IdempotencyKey,
) -> ExceptionOut:
    """Close an exception with a reason, posting the adjusting entry if one is given. The
    same resolution again answers the same; any other on a closed exception is a 409."""
    with context.sessions() as session, session.begin():
        return resolve(session, exception_id, caller.id, body)


def _run(context: AppContext, channel: str, day: date) -> RunOut | None:
    with context.reads() as session:
        return run_view(session, channel, day)


def _check(context: AppContext, channel: str, day: date) -> None:
    if channel not in context.settings.reconciliation_channels:
        raise InvalidRequest("channel_unknown", f"no channel {channel} to reconcile", "channel")
    if day_window(channel, day)[1] > now():
        raise InvalidRequest("day_not_over", "a day is reconciled once it has ended", "day")
