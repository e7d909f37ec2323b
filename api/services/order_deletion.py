"""DELETE /v1/orders/{id}: an unpaid order is cancelled, a paid one refunded in full.

Both go through the sagas: the order's own cancel update (as `POST .../cancel`),
or a RefundWorkflow whose refund id comes from the order alone
(`domain.keys.deletion_refund_id`), so deleting again, even concurrently, joins
the same refund and never refunds twice.

    created, awaiting_payment      cancelled by the saga                  200
    (the buyer paid meanwhile)     as below once the payment is settled   409 until then
    awaiting_receipt, completed    full refund of what is left            202
    closed, cancelled, refunded    nothing more to do                     200
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth.caller import Caller
from api.auth.scope import order_for
from api.deps import AppContext
from api.errors import Conflict
from api.schemas import OrderOut
from api.services.order_views import order_out
from api.services.records import get_order
from api.services.refund_requests import submit_refund
from api.services.updates import resending_lost
from db.tables import Refund
from domain.keys import deletion_refund_id, order_workflow_id
from domain.order_status import CANCELLABLE_STATUSES, OrderStatus
from domain.refunds import REFUNDABLE_STATUSES, RefundAsk, Requester
from domain.saga import CancelRequest
from workflows.order import OrderWorkflow

_NOTHING_TO_DO = frozenset({OrderStatus.CLOSED, OrderStatus.CANCELLED, OrderStatus.REFUNDED})


@dataclass(frozen=True)
class Deletion:
    status_code: int
    order: OrderOut


async def delete_order(context: AppContext, caller: Caller, order_id: str) -> Deletion:
    order = await asyncio.to_thread(_read, context, caller, order_id)
    if order.status in CANCELLABLE_STATUSES:
        await _cancel(context, order_id)
        order = await asyncio.to_thread(_read, context, caller, order_id)
    if order.status in _NOTHING_TO_DO:
        return Deletion(200, order)
    if order.status not in REFUNDABLE_STATUSES:
        raise Conflict(
            "order_not_deletable",
            f"the order is {order.status}; delete it again once its payment is settled",
            "id",
        )
    refund = await asyncio.to_thread(_full_refund, context, Requester(caller.role.value), order_id)
    if refund is not None:
        try:
            await submit_refund(context, caller, refund)
        except Conflict as conflict:
            # A concurrent deletion asked first, when a little less was left: it is the one.
            if conflict.code != "idempotency_key_reused":
                raise
    return Deletion(202, await asyncio.to_thread(_read, context, caller, order_id))


async def _cancel(context: AppContext, order_id: str) -> None:
    """The saga's cancel update; whether it took, the order as stored says."""
    handle = context.temporal.get_workflow_handle(order_workflow_id(order_id))
    request = CancelRequest(reason="deleted")
    try:
        await resending_lost(
            lambda: handle.execute_update(OrderWorkflow.cancel_order, request),
            context.settings.api_update_patience_seconds,
        )
    except WorkflowUpdateFailedError:
        pass  # refused: the buyer has paid meanwhile
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:  # NOT_FOUND: the saga has ended
            raise


def _full_refund(context: AppContext, requester: Requester, order_id: str) -> RefundAsk | None:
    """The refund of everything not yet refunded, asked as the caller; None once their
    deletion's refund was asked (a repeat) or when nothing is left."""
    refund_id = deletion_refund_id(order_id, requester.value)
    with context.sessions() as session:
        if session.get(Refund, refund_id) is not None:
            return None
        order = get_order(session, order_id)
        left = order.payable_amount - order.refunded_amount  # refunded: asked and not failed
    if left <= 0:
        return None
    return RefundAsk(
        refund_id=refund_id,
        order_id=order_id,
        requested_by=requester,  # a buyer's deletion keeps to the buyer's refund window
        reason="order deleted",
        amount=left,
        polling=context.settings.poll,
    )


def _read(context: AppContext, caller: Caller, order_id: str) -> OrderOut:
    with context.reads() as session:
        return order_out(session, order_for(session, caller, order_id), context.settings)
