"""Refunds: ask for one on an order (idempotent), list an order's, read one."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from api.auth.caller import AnyCaller
from api.deps import ContextDep
from api.idempotency import IdempotencyKey
from api.openapi_errors import error_responses
from api.schemas import RefundCreate, RefundOut
from api.services.refund_requests import order_refunds, read_refund, request_refund

router = APIRouter(tags=["refunds"])


@router.post(
    "/v1/orders/{order_id}/refunds",
    status_code=201,
    responses=error_responses(400, 401, 404, 409, 413, 503),
)
async def post_refund(
    order_id: str,
    body: RefundCreate,
    caller: AnyCaller,
    context: ContextDep,
    idempotency_key: IdempotencyKey,
) -> RefundOut:
    """Refund part or all of a paid order; repeat with the same Idempotency-Key safely."""
    return await request_refund(context, caller, order_id, body, idempotency_key)


@router.get("/v1/orders/{order_id}/refunds", responses=error_responses(401, 404))
async def list_order_refunds(
    order_id: str, caller: AnyCaller, context: ContextDep
) -> list[RefundOut]:
    return await asyncio.to_thread(order_refunds, context, caller, order_id)


@router.get("/v1/refunds/{refund_id}", responses=error_responses(401, 404))
async def get_refund(refund_id: str, caller: AnyCaller, context: ContextDep) -> RefundOut:
    return await asyncio.to_thread(read_refund, context, caller, refund_id)
