"""Settlement: run a day (backfill), settle one merchant, follow progress; bank notifications."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth.caller import PUBLIC, OperatorCaller
from api.deps import AppContext, ContextDep
from api.errors import InvalidRequest, NotFound, SignatureInvalid
from api.openapi_errors import NOTIFICATION_ACKNOWLEDGEMENTS, NOTIFICATION_BODY, error_responses
from api.services.records import now
from channels.bank import PayoutStatus
from channels.errors import NotificationFormatError, NotificationSignatureError
from db.tables import ChannelNotification, Merchant, Payout, Statement
from db.writes import insert_ignore
from domain.keys import merchant_settlement_workflow_id, settlement_run_workflow_id
from domain.settlement import (
    MerchantDay,
    MerchantSettlementView,
    SettlementProgress,
    SettlementRunInput,
)
from workflows.settlement import MerchantSettlementWorkflow, SettlementRunWorkflow

router = APIRouter(tags=["settlement"])


class DayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: date

    @field_validator("day", mode="before")
    @classmethod
    def _iso_string(cls, value: object) -> object:
        """A day is the ISO string the document says: pydantic would take `0` as 1970-01-01."""
        if not isinstance(value, str):
            raise ValueError("a day is a string: YYYY-MM-DD")
        return value


class RunIn(DayIn):
    """A day to settle; `merchant_ids` limits the run to those merchants."""

    merchant_ids: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=1000
    )


@router.post(
    "/v1/settlements/runs",
    status_code=202,
    responses=error_responses(400, 401, 403, 413, 503),
)
async def run_day(body: RunIn, caller: OperatorCaller, context: ContextDep) -> SettlementProgress:
    """Settle every merchant for a day (a backfill, or a re-run: both pay nothing twice)."""
    _not_in_future(body.day)
    merchant_ids = tuple(sorted(set(body.merchant_ids)))
    handle = await context.temporal.start_workflow(
        SettlementRunWorkflow.run,
        SettlementRunInput(day=body.day, merchant_ids=merchant_ids, polling=context.settings.poll),
        id=settlement_run_workflow_id(body.day, merchant_ids),
        task_queue=context.settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    return await handle.query(SettlementRunWorkflow.progress)


@router.get("/v1/settlements/runs/{day}", responses=error_responses(400, 401, 403, 404, 503))
async def run_progress(
    day: date, caller: OperatorCaller, context: ContextDep
) -> SettlementProgress:
    handle = context.temporal.get_workflow_handle(settlement_run_workflow_id(day))
    try:
        return await handle.query(SettlementRunWorkflow.progress)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        raise NotFound("run_not_found", f"no settlement run for {day}", "day") from None


@router.post(
    "/v1/merchants/{merchant_id}/settlements",
    status_code=202,
    responses=error_responses(400, 401, 403, 404, 413, 503),
)
async def settle_merchant(
    merchant_id: str, body: DayIn, caller: OperatorCaller, context: ContextDep
) -> MerchantSettlementView:
    """Settle one merchant for a day, as the daily run would (once per merchant and day)."""
    _not_in_future(body.day)
    await asyncio.to_thread(_check_merchant, context, merchant_id)
    workflow_id = merchant_settlement_workflow_id(merchant_id, body.day)
    try:
        handle = await context.temporal.start_workflow(
            MerchantSettlementWorkflow.run,
            MerchantDay(merchant_id=merchant_id, day=body.day, polling=context.settings.poll),
            id=workflow_id,
            task_queue=context.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:  # settled already: report that settlement
        handle = context.temporal.get_workflow_handle_for(
            MerchantSettlementWorkflow.run, workflow_id
        )
    return await handle.query(MerchantSettlementWorkflow.view)


@router.post(
    "/v1/payouts/notify",
    dependencies=[Depends(PUBLIC)],
    openapi_extra=NOTIFICATION_BODY,
    responses={**NOTIFICATION_ACKNOWLEDGEMENTS, **error_responses(400, 401, 404, 413, 503)},
)
async def payout_notification(request: Request, context: ContextDep) -> Response:
    """The bank tells us a payout's outcome: verify, store raw, signal, then acknowledge."""
    bank = context.bank
    body = await request.body()
    try:
        notification = bank.parse_notification(request.headers, body)
    except NotificationSignatureError:
        raise SignatureInvalid("invalid_signature", "signature verification failed") from None
    except NotificationFormatError as error:
        raise InvalidRequest("invalid_notification", error.message) from None
    payout = await asyncio.to_thread(
        _store, context, notification.notification_id, body, notification.payout.payout_id
    )
    if payout is None:
        raise NotFound("payout_not_found", "the notification names no payout of ours", "payout_id")
    state = notification.payout
    if state.status != PayoutStatus.PENDING:
        outcome = state.outcome()
        handle = context.temporal.get_workflow_handle(payout)
        try:
            await handle.signal(MerchantSettlementWorkflow.payout_notification, outcome)
        except RPCError as error:
            # NOT_FOUND: the settlement has ended; it already knew the outcome.
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
    ack = bank.acknowledgement()
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)


def _store(context: AppContext, notification_id: str, body: bytes, payout_id: str) -> str | None:
    """Keep the raw message; the id of the settlement workflow the payout belongs to."""
    with context.sessions() as session, session.begin():
        payout = session.get(Payout, payout_id)
        if payout is None:
            return None
        statement = session.get(Statement, payout.statement_id)
        assert statement is not None
        insert_ignore(
            session,
            ChannelNotification,
            {
                "id": f"bank:{notification_id}",
                "channel": "bank",
                "order_id": payout_id,
                "kind": "payout",
                "raw_body": body.decode("utf-8", errors="replace"),
                "received_at": now(),
            },
        )
        return merchant_settlement_workflow_id(
            payout.merchant_id, date.fromisoformat(statement.day)
        )


def _check_merchant(context: AppContext, merchant_id: str) -> None:
    with context.reads() as session:
        if session.get(Merchant, merchant_id) is None:
            raise NotFound("merchant_not_found", f"no merchant {merchant_id}", "merchant_id")


def _not_in_future(day: date) -> None:
    if day > now().date():
        raise InvalidRequest("day_in_future", "a day can be settled once it has begun", "day")
