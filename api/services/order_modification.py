"""POST /v1/orders/{id}/modify: price the new lines here, then let the order's saga apply them.

Whatever the API can refuse (the lines, the order's coupon on the new total) is
refused before the saga is asked, so a bad request changes nothing. The saga
then re-prices with the coupon checked again, closes the pending payment at the
channel, records the new lines and issues a new payment for the new amount,
all in its own run loop, between payment notifications. Its refusals map here:

    CouponRejected, OrderInvalid   400 (the code and param the pricing gave)
    OrderNotModifiable             409 order_not_modifiable (paid, closed, cancelled,
                                   or the buyer paid the old amount first)
    ModificationFailed             503 modification_failed (the channel is down; try again)
"""

from __future__ import annotations

import asyncio

from sqlmodel import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.auth.caller import Caller
from api.auth.scope import order_for
from api.deps import AppContext
from api.errors import ApiError, Conflict, InvalidRequest, ServiceUnavailable
from api.schemas import OrderModify, OrderOut
from api.services.order_views import order_out
from api.services.records import now
from api.services.updates import resending_lost
from db.coupons import reprice
from db.tables import OrderQuote
from domain.failures import COUPON_REJECTED, MODIFICATION_FAILED, ORDER_INVALID
from domain.keys import order_workflow_id
from domain.pricing import OrderLine
from domain.saga import ModifyRequest
from workflows.order import OrderWorkflow


async def modify_order(
    context: AppContext, caller: Caller, order_id: str, body: OrderModify
) -> OrderOut:
    request = await asyncio.to_thread(_checked_request, context, caller, order_id, body)
    try:
        await _send(context, order_id, request)
    except WorkflowUpdateFailedError as failed:
        raise _refusal(failed.cause) from None
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        order = await asyncio.to_thread(_read, context, caller, order_id)  # the saga has ended
        message = f"the order is {order.status}; only an order awaiting payment can be modified"
        raise _not_modifiable(message) from None
    return await asyncio.to_thread(_read, context, caller, order_id)


async def _send(context: AppContext, order_id: str, request: ModifyRequest) -> None:
    """The update, sent again once if the server lost it before the saga accepted it (the
    task that carried it failed, e.g. because the saga ended as a payment arrived)."""
    handle = context.temporal.get_workflow_handle(order_workflow_id(order_id))
    await resending_lost(
        lambda: handle.execute_update(OrderWorkflow.modify_order, request),
        context.settings.api_update_patience_seconds,
    )


def _checked_request(
    context: AppContext, caller: Caller, order_id: str, body: OrderModify
) -> ModifyRequest:
    """The new lines, priced as the saga will price them; a DomainError (400) if they cannot be."""
    lines = tuple(OrderLine(**line.model_dump()) for line in body.lines)
    with context.sessions() as session:
        order = order_for(session, caller, order_id)
        if session.exec(select(OrderQuote.id).where(OrderQuote.order_id == order_id)).first():
            # Its quote locks the buyer's amount for these lines: cancel and order again.
            raise _not_modifiable("an order paid in another currency cannot be modified")
        priced = reprice(session, order, lines, now())
    if priced.payable_amount == 0:
        message = "nothing would be left to pay; cancel the order instead"
        raise InvalidRequest("payable_zero", message, "lines")
    return ModifyRequest(lines=lines)


def _refusal(cause: BaseException | None) -> ApiError:
    if not isinstance(cause, ApplicationError):
        return ServiceUnavailable("modification_failed", "the order could not be modified")
    if cause.type in (COUPON_REJECTED, ORDER_INVALID):
        code, param = (*cause.details, None, None)[:2]
        return InvalidRequest(
            str(code or "modification_invalid"),
            cause.message,
            None if param is None else str(param),
        )
    if cause.type == MODIFICATION_FAILED:
        return ServiceUnavailable("modification_failed", cause.message)
    return _not_modifiable(cause.message)


def _not_modifiable(message: str) -> Conflict:
    return Conflict("order_not_modifiable", message, "id")


def _read(context: AppContext, caller: Caller, order_id: str) -> OrderOut:
    with context.reads() as session:
        return order_out(session, order_for(session, caller, order_id), context.settings)
