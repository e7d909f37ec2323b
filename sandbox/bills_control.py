"""Test controls for the channels' bills (API key as every /control route).

    POST   /control/bills/{channel}/{day}/discrepancies   plant one (`sandbox.bill_plants`)
    GET    /control/bills/{channel}/{day}/discrepancies   what is planted, in order
    DELETE /control/bills/{channel}/{day}/discrepancies   plant nothing more there
    POST   /control/bills/{channel}/{day}/publish         publish a day not ended yet

A plant aimed at a line (missing_*, amount_changed, fee_changed, duplicate_line)
answers 404 bill_line_not_found when the day's bill has no such line, so a test
cannot plant in the wrong day unawares; paid_there wants a payment that is not
paid (409 otherwise).
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Request, Response

from channels.base import ChannelName
from sandbox.bill_plants import PlantedDiscrepancy, PlantRequest
from sandbox.bills import BillDesk
from sandbox.deps import require_api_key

router = APIRouter(
    prefix="/control/bills", tags=["control"], dependencies=[Depends(require_api_key)]
)


def _desk(request: Request) -> BillDesk:
    desk: BillDesk = request.app.state.bills
    return desk


@router.post("/{channel}/{day}/discrepancies")
async def plant_discrepancy(
    channel: ChannelName, day: date, body: PlantRequest, request: Request
) -> PlantedDiscrepancy:
    return await _desk(request).plant(channel, day, body)


@router.get("/{channel}/{day}/discrepancies")
async def list_discrepancies(
    channel: ChannelName, day: date, request: Request
) -> list[PlantedDiscrepancy]:
    return _desk(request).plants.listed(channel, day)


@router.delete("/{channel}/{day}/discrepancies", status_code=204)
async def clear_discrepancies(channel: ChannelName, day: date, request: Request) -> Response:
    _desk(request).plants.clear(channel, day)
    return Response(status_code=204)


@router.post("/{channel}/{day}/publish")
async def publish_bill(channel: ChannelName, day: date, request: Request) -> dict[str, bool]:
    _desk(request).publish(channel, day)
    return {"published": True}
