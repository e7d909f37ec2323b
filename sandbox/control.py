"""Test controls: play the buyer and the bank, inject faults, watch deliveries.

Every route wants the sandbox's API key (`Authorization: Bearer <PAYSAGA_SANDBOX_API_KEY>`,
as the bank API does), else 401: a control pays an order with no buyer's money, and
anything that can reach the sandbox over HTTP (a merchant's webhook URL pointed at it,
say) must not be able to press it. The buyer's own pages (cashier.py) need no key.

Paths carry only out_trade_no (or refund_id); add `?channel=` when the same
id exists on more than one channel. Payout controls take a payout_id, or a
merchant_id for the behaviour (and for `/faults/{merchant_id}`, which fails
that merchant's payout API calls).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field

from channels.base import ChannelName
from sandbox.deps import PayoutServiceDep, ServiceDep, require_api_key
from sandbox.notifier import DeliveryMode
from sandbox.protocol import Payment, Payout, Refund
from sandbox.service import refund_view
from sandbox.store import DeliveryAttempt, PayoutMode, RefundMode

router = APIRouter(prefix="/control", tags=["control"], dependencies=[Depends(require_api_key)])


class PayInstruction(BaseModel):
    notify: DeliveryMode = DeliveryMode.NORMAL
    delay_ms: int = Field(default=0, ge=0, le=600_000)
    force: bool = False  # pay even a closed or declined payment: a late payment


class DeclineInstruction(BaseModel):
    notify: DeliveryMode = DeliveryMode.NORMAL  # `drop`: the decline's notification is lost


class FaultInstruction(BaseModel):
    api_failures: int = Field(ge=0)  # the next N channel API calls about this order answer 503


class RefundBehaviour(BaseModel):
    mode: RefundMode


class PayoutBehaviour(BaseModel):
    mode: PayoutMode  # for payouts created from now on


@router.post("/payments/{out_trade_no}/pay")
async def pay_payment(
    out_trade_no: str,
    service: ServiceDep,
    instruction: Annotated[PayInstruction | None, Body()] = None,
    channel: ChannelName | None = None,
) -> Payment:
    instruction = instruction or PayInstruction()
    payment = await service.store.find_payment(out_trade_no, channel)
    paid = await service.pay(
        payment,
        force=instruction.force,
        mode=instruction.notify,
        delay_ms=instruction.delay_ms,
    )
    return service.payment_view(paid)


@router.post("/payments/{out_trade_no}/decline")
async def decline_payment(
    out_trade_no: str,
    service: ServiceDep,
    instruction: Annotated[DeclineInstruction | None, Body()] = None,
    channel: ChannelName | None = None,
) -> Payment:
    instruction = instruction or DeclineInstruction()
    payment = await service.store.find_payment(out_trade_no, channel)
    return service.payment_view(await service.decline(payment, mode=instruction.notify))


@router.get("/payments/{out_trade_no}/deliveries")
async def list_deliveries(out_trade_no: str, service: ServiceDep) -> list[DeliveryAttempt]:
    return await service.store.deliveries(out_trade_no)


@router.post("/faults/{out_trade_no}")
async def set_faults(
    out_trade_no: str, body: FaultInstruction, service: ServiceDep
) -> FaultInstruction:
    await service.store.set_faults(out_trade_no, body.api_failures)
    return body


@router.post("/refund-behaviour/{out_trade_no}")
async def set_refund_behaviour(
    out_trade_no: str, body: RefundBehaviour, service: ServiceDep
) -> RefundBehaviour:
    await service.store.set_refund_mode(out_trade_no, body.mode)
    return body


@router.post("/refunds/{refund_id}/complete")
async def complete_refund(
    refund_id: str, service: ServiceDep, channel: ChannelName | None = None
) -> Refund:
    refund = await service.store.find_refund(refund_id, channel)
    return refund_view(await service.complete_refund(refund))


@router.post("/payout-behaviour/{merchant_id}")
async def set_payout_behaviour(
    merchant_id: str, body: PayoutBehaviour, payouts: PayoutServiceDep
) -> PayoutBehaviour:
    await payouts.store.set_payout_mode(merchant_id, body.mode)
    return body


@router.post("/payouts/{payout_id}/complete")
async def complete_payout(payout_id: str, payouts: PayoutServiceDep) -> Payout:
    return await payouts.settle(payout_id, "paid")


@router.post("/payouts/{payout_id}/fail")
async def fail_payout(payout_id: str, payouts: PayoutServiceDep) -> Payout:
    return await payouts.settle(payout_id, "failed")


@router.get("/payouts/{payout_id}/deliveries")
async def list_payout_deliveries(
    payout_id: str, payouts: PayoutServiceDep
) -> list[DeliveryAttempt]:
    return await payouts.store.deliveries(payout_id)
