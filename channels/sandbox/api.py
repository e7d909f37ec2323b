"""The channel API our platform calls: `/{channel}/api/...`, bearer-authenticated.

Every route is one service call; errors are `SandboxError`s rendered by
`errors.install_error_handlers`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from channels.base import ChannelName
from channels.sandbox.deps import ServiceDep, require_api_key
from channels.sandbox.protocol import (
    CloseResponse,
    Payment,
    PaymentCreate,
    Refund,
    RefundCreate,
)

router = APIRouter(
    prefix="/{channel}/api",
    tags=["channel api"],
    dependencies=[Depends(require_api_key)],
)


@router.post("/payments")
async def create_payment(channel: ChannelName, body: PaymentCreate, service: ServiceDep) -> Payment:
    return await service.create_payment(channel, body)


@router.get("/payments/{out_trade_no}")
async def get_payment(channel: ChannelName, out_trade_no: str, service: ServiceDep) -> Payment:
    return await service.get_payment(channel, out_trade_no)


@router.post("/payments/{out_trade_no}/close")
async def close_payment(
    channel: ChannelName, out_trade_no: str, service: ServiceDep
) -> CloseResponse:
    return await service.close_payment(channel, out_trade_no)


@router.post("/refunds")
async def create_refund(channel: ChannelName, body: RefundCreate, service: ServiceDep) -> Refund:
    return await service.create_refund(channel, body)


@router.get("/refunds/{refund_id}")
async def get_refund(channel: ChannelName, refund_id: str, service: ServiceDep) -> Refund:
    return await service.get_refund(channel, refund_id)
