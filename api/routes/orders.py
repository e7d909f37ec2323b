"""Orders: create (idempotent), read, list, modify, cancel, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth.caller import (
    AnyCaller,
    AnyCallerCheckedInRoute,
    BuyerOrOperator,
    Caller,
    checked_in,
)
from api.auth.rate_limit import TooManyRequests
from api.auth.scope import order_for, scoped_orders
from api.deps import AppContext, ContextDep
from api.errors import Conflict, ServiceUnavailable
from api.idempotency import IdempotencyKey
from api.openapi_errors import error_responses
from api.order_waits import wait_for_move
from api.order_watch import CallerWaitsFull, WatchFull
from api.pagination import Keyset, bad_cursor, fetch_page
from api.schemas import CancelIn, OrderCreate, OrderModify, OrderOut, OrderPage, PaymentAttempts
from api.services.order_creation import create_order
from api.services.order_deletion import delete_order
from api.services.order_modification import modify_order
from api.services.order_views import order_out, orders_out
from api.services.records import attempts_out
from api.services.updates import resending_lost
from db.tables import Order
from domain.keys import order_workflow_id
from domain.order_status import OrderStatus
from domain.saga import CancelRequest, ReceiptConfirmation
from workflows.order import OrderWorkflow

router = APIRouter(prefix="/v1/orders", tags=["orders"])
_NEWEST_FIRST = Keyset((Order.id,))  # ids are time-ordered
MAX_WAIT_SECONDS = 30  # under the idle timeouts of common proxies (60 s)


@router.post(
    "",
    status_code=201,
    response_model=OrderOut,
    responses=error_responses(400, 401, 409, 413, 503),
)
async def post_order(
    body: OrderCreate, caller: AnyCaller, context: ContextDep, idempotency_key: IdempotencyKey
) -> Response:
    """A buyer orders for themself; a merchant (API key) for its own shop; operators any."""
    stored = await create_order(context, caller, idempotency_key, body)
    return Response(stored.body, status_code=stored.status_code, media_type="application/json")


# The two reads a buyer's page polls are `async` with one thread hop of their own: as plain
# `def` routes FastAPI ran them in its thread pool, then took a second hop to check the
# model they returned. run_in_threadpool: the same pool those routes ran in.


@router.get("/{order_id}", responses=error_responses(401, 404))
async def read_order(
    order_id: str, caller: AnyCallerCheckedInRoute, context: ContextDep
) -> OrderOut:
    # The caller's credential is checked in the read's own session, by order_for.
    return await run_in_threadpool(_order_view, context, caller, order_id)


@router.get("/{order_id}/status-change", responses=error_responses(400, 401, 404, 429, 503))
async def wait_for_status_change(
    order_id: str,
    caller: AnyCallerCheckedInRoute,
    context: ContextDep,
    request: Request,
    from_status: Annotated[OrderStatus, Query(alias="from")],
    timeout_seconds: Annotated[float, Query(gt=0, le=MAX_WAIT_SECONDS)] = 10,
) -> OrderOut:
    """The order once its status is no longer `from` (at once if it is not), or as it is
    when `timeout_seconds` end: a page waiting for a payment asks this again and again,
    instead of reading the order over and over. 503 with Retry-After when as many
    requests wait as the API lets wait, 429 when as many of this caller's do as one caller
    may hold (a shop's server following many orders takes webhooks instead)."""
    # The status alone first: the whole view only for the answer.
    status, waiter = await run_in_threadpool(_order_status, context, caller, order_id)
    if status == from_status:
        try:
            await wait_for_move(
                context,
                context.order_watch,
                request,
                order_id,
                from_status.value,
                timeout_seconds,
                waiter,
            )
        except WatchFull:
            raise ServiceUnavailable(
                "order_waits_full", "too many requests are waiting; ask again", retry_after=1
            ) from None
        except CallerWaitsFull:
            message = "as many of your requests are waiting as one caller may hold"
            raise TooManyRequests(1, "order_waits_per_caller", message) from None
    # Read now, credential included: it may have been revoked while the request waited.
    return await run_in_threadpool(_order_view, context, caller, order_id)


@router.get("/{order_id}/payments", responses=error_responses(401, 404))
async def list_payment_attempts(
    order_id: str, caller: AnyCallerCheckedInRoute, context: ContextDep
) -> PaymentAttempts:
    """The order's payment attempts, first to latest: a modification closes the pending
    attempt and issues the next under its own reference, and every one stays listed."""
    return await run_in_threadpool(_attempts_view, context, caller, order_id)


@router.get("", responses=error_responses(400, 401))
def list_orders(
    caller: AnyCaller,
    context: ContextDep,
    merchant_id: str | None = None,
    status: OrderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> OrderPage:
    """The caller's orders, newest first; pass the last id of a page as `starting_after`."""
    query = scoped_orders(select(Order), caller)
    if merchant_id is not None:
        query = query.where(Order.merchant_id == merchant_id)
    if status is not None:
        query = query.where(Order.status == status.value)
    with context.reads() as session:
        cursor = None
        if starting_after is not None:
            # One of the caller's orders, whatever its status now: it may have moved on.
            mine = scoped_orders(select(Order).where(Order.id == starting_after), caller)
            cursor = session.exec(mine).first()
            if cursor is None:
                raise bad_cursor(starting_after)
        page = fetch_page(session, _NEWEST_FIRST.ordered(query, cursor), limit)
        data = orders_out(session, page.items, context.settings)
    return OrderPage(
        data=data, has_more=page.has_more, next_cursor=page.next_cursor(lambda row: row.id)
    )


@router.post("/{order_id}/modify", responses=error_responses(400, 401, 404, 409, 413, 503))
async def post_modification(
    order_id: str, body: OrderModify, caller: AnyCaller, context: ContextDep
) -> OrderOut:
    """New lines for an unpaid order: re-priced, its coupon checked again, its payment at
    the channel closed and issued anew for the new amount (a new checkout)."""
    return await modify_order(context, caller, order_id, body)


@router.delete(
    "/{order_id}",
    response_model=OrderOut,
    responses={202: {"model": OrderOut}, **error_responses(400, 401, 404, 409, 503)},
)
async def delete(order_id: str, caller: AnyCaller, context: ContextDep) -> Response:
    """Cancel an unpaid order (200), or refund a paid one in full (202); repeats are safe."""
    deletion = await delete_order(context, caller, order_id)
    return Response(
        deletion.order.model_dump_json(),
        status_code=deletion.status_code,
        media_type="application/json",
    )


@router.post("/{order_id}/cancel", responses=error_responses(400, 401, 404, 409, 413, 503))
async def cancel_order(
    order_id: str, caller: AnyCaller, context: ContextDep, body: CancelIn | None = None
) -> OrderOut:
    request = body or CancelIn()
    return await _update_then_expect(
        context,
        caller,
        order_id,
        OrderWorkflow.cancel_order,
        CancelRequest(reason=request.reason),
        OrderStatus.CANCELLED,
        Conflict("order_not_cancellable", "only unpaid orders can be cancelled", "id"),
    )


@router.post("/{order_id}/confirm-receipt", responses=error_responses(401, 403, 404, 409, 503))
async def confirm_receipt(order_id: str, caller: BuyerOrOperator, context: ContextDep) -> OrderOut:
    """The buyer has the goods: the order completes and the merchant's share is released."""
    return await _update_then_expect(
        context,
        caller,
        order_id,
        OrderWorkflow.confirm_receipt,
        ReceiptConfirmation(),
        OrderStatus.COMPLETED,
        Conflict("order_not_confirmable", "only paid orders can be confirmed as received", "id"),
    )


async def _update_then_expect(
    context: AppContext,
    caller: Caller,
    order_id: str,
    update: Any,
    argument: object,
    expected: OrderStatus,
    refusal: Conflict,
) -> OrderOut:
    """Send an update to the order's saga, then answer from the database.

    The saga may refuse (its validator: the order is in the wrong state) or have ended
    (its final state is in the database); either way the order as stored says whether
    the update took effect, and `refusal` (with the current status) answers if not.
    """
    await asyncio.to_thread(_order_view, context, caller, order_id)  # 404: not the caller's
    handle = context.temporal.get_workflow_handle(order_workflow_id(order_id))
    try:
        patience = context.settings.api_update_patience_seconds
        await resending_lost(lambda: handle.execute_update(update, argument), patience)
    except WorkflowUpdateFailedError:
        pass  # refused by the validator; answered below
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
    order = await asyncio.to_thread(_order_view, context, caller, order_id)
    if order.status != expected:
        refusal.message = f"the order is {order.status}; {refusal.message}"
        raise refusal
    return order


def _order_view(context: AppContext, caller: Caller, order_id: str) -> OrderOut:
    with context.reads() as session:
        return order_out(session, order_for(session, caller, order_id), context.settings)


def _order_status(context: AppContext, caller: Caller, order_id: str) -> tuple[OrderStatus, str]:
    """The order's status, and who asks (role and id, its credential checked)."""
    with context.reads() as session:
        checked = checked_in(session, caller)
        status = OrderStatus(order_for(session, checked, order_id).status)
        return status, f"{checked.role}:{checked.id}"


def _attempts_view(context: AppContext, caller: Caller, order_id: str) -> PaymentAttempts:
    with context.reads() as session:
        return attempts_out(session, order_for(session, caller, order_id))
