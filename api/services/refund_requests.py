"""POST /v1/orders/{id}/refunds: start (or join) the refund's workflow and report its verdict.

The refund id is derived from the order and the Idempotency-Key, so a repeat of
the request reaches the same workflow (`refund-{refund id}`) and the same refund
at the channel. One round trip: update-with-start runs the refund rules inside
the workflow and answers once they have accepted or rejected the refund.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from sqlmodel import Session, col, select
from temporalio.client import WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.auth.caller import Caller
from api.auth.scope import order_for, sees_order
from api.deps import AppContext
from api.errors import ApiError, Conflict, InvalidRequest, NotFound
from api.schemas import RefundCreate, RefundLineIn, RefundOut, RefundPartsOut
from api.services.updates import resending_lost, update_with_start
from db.tables import Order, Refund, RefundLine
from domain.keys import refund_workflow_id
from domain.refunds import (
    LineRefund,
    RefundAcceptance,
    RefundAsk,
    RefundStatus,
    RefundView,
    Requester,
)
from workflows.refund import RefundWorkflow

# Rejections about the order's state, not the request: retrying later may succeed.
_CONFLICTS = frozenset({"order_not_refundable"})


def refund_id_for(order_id: str, idempotency_key: str) -> str:
    digest = hashlib.sha256(f"{order_id}\n{idempotency_key}".encode()).hexdigest()
    return f"rf_{digest[:24]}"


async def request_refund(
    context: AppContext,
    caller: Caller,
    order_id: str,
    body: RefundCreate,
    idempotency_key: str,
) -> RefundOut:
    """Ask for a refund as the caller: their role is who asked (and which rules apply).

    The Idempotency-Key is required (api.idempotency): without one a client's retry
    would be a second refund."""
    await asyncio.to_thread(_check_order, context, caller, order_id)
    # A key is the caller's own: another caller's identical key is another refund.
    key = f"{caller.role}:{caller.id}:{idempotency_key}"
    ask = RefundAsk(
        refund_id=refund_id_for(order_id, key),
        order_id=order_id,
        requested_by=Requester(caller.role.value),
        reason=body.reason,
        amount=body.amount,
        lines=tuple(LineRefund(**line.model_dump()) for line in body.lines or ()),
        polling=context.settings.poll,
    )
    return await submit_refund(context, caller, ask)


async def submit_refund(context: AppContext, caller: Caller, ask: RefundAsk) -> RefundOut:
    """Start (or join) the ask's refund workflow; a rejection by its rules is an API error."""
    view = await _run_refund(context, ask)
    if view.status == RefundStatus.REJECTED:
        error: type[ApiError] = Conflict if view.rejection_code in _CONFLICTS else InvalidRequest
        raise error(
            view.rejection_code or "refund_rejected",
            view.failure_reason or "refund rejected",
            view.rejection_param,
        )
    return await asyncio.to_thread(read_refund, context, caller, ask.refund_id)


async def _run_refund(context: AppContext, ask: RefundAsk) -> RefundView:
    def start() -> WithStartWorkflowOperation[RefundWorkflow, RefundView]:
        return WithStartWorkflowOperation(
            RefundWorkflow.run,
            ask,
            id=refund_workflow_id(ask.refund_id),
            task_queue=context.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )

    async def send() -> RefundView:
        # An operation is used once: each attempt gets its own.
        view: RefundView = await update_with_start(
            context.temporal, RefundWorkflow.await_acceptance, RefundAcceptance(), start()
        )
        return view

    handle: WorkflowHandle[RefundWorkflow, RefundView] = context.temporal.get_workflow_handle_for(
        RefundWorkflow.run, refund_workflow_id(ask.refund_id)
    )
    patience = context.settings.api_update_patience_seconds
    try:
        view = await resending_lost(send, patience)
    except WorkflowAlreadyStartedError:  # a repeat of a refund whose workflow has ended
        view = await resending_lost(lambda: handle.query(RefundWorkflow.view), patience)
    if await resending_lost(lambda: handle.query(RefundWorkflow.ask), patience) != ask:
        raise Conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different refund",
            "Idempotency-Key",
        )
    return view


def _check_order(context: AppContext, caller: Caller, order_id: str) -> None:
    with context.reads() as session:
        order_for(session, caller, order_id)


def read_refund(context: AppContext, caller: Caller, refund_id: str) -> RefundOut:
    with context.reads() as session:
        refund = session.get(Refund, refund_id)
        order = session.get(Order, refund.order_id) if refund is not None else None
        if refund is None or order is None or not sees_order(caller, order):
            raise NotFound("refund_not_found", f"no refund {refund_id}", "id")
        return refunds_out(session, [refund])[0]


def order_refunds(context: AppContext, caller: Caller, order_id: str) -> list[RefundOut]:
    with context.reads() as session:
        order_for(session, caller, order_id)
        rows = session.exec(
            select(Refund).where(Refund.order_id == order_id).order_by(col(Refund.created_at))
        ).all()
        return refunds_out(session, rows)


def refunds_out(session: Session, refunds: Sequence[Refund]) -> list[RefundOut]:
    """Each refund as its readers see it, their lines read in one query (not one each)."""
    lines: dict[str, list[RefundLineIn]] = {refund.id: [] for refund in refunds}
    if refunds:
        query = (
            select(RefundLine)
            .where(col(RefundLine.refund_id).in_(list(lines)))
            .order_by(col(RefundLine.refund_id), col(RefundLine.line_no))
        )
        for line in session.exec(query):
            lines[line.refund_id].append(RefundLineIn(line_no=line.line_no, quantity=line.quantity))
    return [_refund_out(refund, lines[refund.id]) for refund in refunds]


def _refund_out(refund: Refund, lines: list[RefundLineIn]) -> RefundOut:
    return RefundOut(
        id=refund.id,
        order_id=refund.order_id,
        status=refund.status,
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
        requested_by=refund.requested_by,
        failure_reason=refund.failure_reason,
        parts=RefundPartsOut(
            channel_fee=refund.channel_fee_amount,
            commission=refund.commission_amount,
            merchant_net=refund.merchant_net_amount,
        ),
        lines=lines,
        created_at=refund.created_at,
        updated_at=refund.updated_at,
    )
