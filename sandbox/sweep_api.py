"""The channels' settlements at the bank: what our platform's account received
(`GET /bank/api/incoming-transfers`), and the control that settles a day at once
(`POST /control/sweeps/{channel}/{day}`), and the card gateway's settlement currency
and rate for a presentment currency (`PUT /control/fx/settlement-rate`). All want the
sandbox's API key."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from channels.bank_wire import IncomingTransfer, IncomingTransfers, TransferConversion
from channels.base import ChannelName
from sandbox.deps import require_api_key
from sandbox.settlement_fx import SettlementConversion
from sandbox.sweep_service import SweepService
from sandbox.sweeps import SweepRecord


async def get_sweeps(request: Request) -> SweepService:
    sweeps: SweepService = request.app.state.sweeps
    return sweeps


SweepServiceDep = Annotated[SweepService, Depends(get_sweeps)]

bank_router = APIRouter(
    prefix="/bank/api", tags=["bank api"], dependencies=[Depends(require_api_key)]
)
control_router = APIRouter(
    prefix="/control", tags=["control"], dependencies=[Depends(require_api_key)]
)


@bank_router.get("/incoming-transfers")
async def incoming_transfers(
    channel: ChannelName, day: date, sweeps: SweepServiceDep
) -> IncomingTransfers:
    """The transfers `channel` made for its takings of `day` (none until it settled)."""
    transfers = [transfer_view(s) for s in await sweeps.store.sweeps(channel, day)]
    return IncomingTransfers(channel=channel.value, day=day.isoformat(), transfers=transfers)


@control_router.post("/sweeps/{channel}/{day}")
async def settle_day(
    channel: ChannelName, day: date, sweeps: SweepServiceDep
) -> list[IncomingTransfer]:
    """The channel settles `day` now, whatever its cycle (once: a second call repeats it)."""
    return [transfer_view(s) for s in await sweeps.settle(channel, day)]


class SettlementRate(BaseModel):
    """Settle the card's `currency` takings in `settle_currency`, at `rate` (settlement
    units per presentment unit) or, when it is None, the gateway's moving market rate."""

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    settle_currency: str = Field(pattern=r"^[A-Z]{3}$")
    rate: Decimal | None = Field(default=None, gt=0, max_digits=20, decimal_places=8)


@control_router.put("/fx/settlement-rate")
async def set_settlement_rate(body: SettlementRate, sweeps: SweepServiceDep) -> SettlementRate:
    sweeps.settlement_fx.set(SettlementConversion(body.currency, body.settle_currency, body.rate))
    return body


def transfer_view(sweep: SweepRecord) -> IncomingTransfer:
    return IncomingTransfer(
        transfer_id=sweep.transfer_id,
        channel=sweep.channel,
        day=sweep.day,
        currency=sweep.currency,
        gross=sweep.gross,
        fees=sweep.fees,
        refunds=sweep.refunds,
        net=sweep.net,
        status=sweep.status,
        bank_reference=sweep.bank_reference,
        conversion=_conversion(sweep),
    )


def _conversion(sweep: SweepRecord) -> TransferConversion | None:
    if sweep.source_currency is None or sweep.rate is None:
        return None
    return TransferConversion(
        source_currency=sweep.source_currency, rate=sweep.rate, orders=dict(sweep.orders or {})
    )
