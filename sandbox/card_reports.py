"""The card gateway's reports: a day's itemized balance transactions (`channels.card.bill_wire`).

    POST /card/v1/reporting/report_runs    run the report for one UTC day, at once
    GET  /card/v1/files/{file}/contents    its CSV (`sandbox.bill_formats.card`)

Bearer auth and error shape as the rest of the card API. A file id names its day
(`file_card_yyyymmdd`); its contents are built when downloaded, with the gateway's
payouts of that day once it has settled it (`sandbox.sweeps`). A `corrupt_file`
plant serves the file cut short, so it no longer has the size the run stated.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, date, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from channels.base import ChannelName
from channels.card.bill_wire import (
    DATA_NOT_AVAILABLE,
    REPORT_TYPE,
    ReportFile,
    ReportParameters,
    ReportRun,
)
from sandbox.bill_entries import day_window
from sandbox.bill_formats import card as card_format
from sandbox.bills import BillDesk
from sandbox.card_api import require_secret_key
from sandbox.card_errors import CardError, CardRoute
from sandbox.card_forms import Params, read_form

CARD = ChannelName.CARD
_FILE_PREFIX = "file_card_"
_RUN_PARAMS = frozenset({"report_type", "parameters[interval_start]", "parameters[interval_end]"})

router = APIRouter(prefix="/v1", route_class=CardRoute, dependencies=[Depends(require_secret_key)])


@router.post("/reporting/report_runs")
async def create_report_run(request: Request) -> ReportRun:
    params = Params(await read_form(request), _RUN_PARAMS)
    if params.required("report_type") != REPORT_TYPE:
        raise CardError(400, "parameter_invalid", "Unknown report_type.", param="report_type")
    start = params.positive_integer("parameters[interval_start]") or 0
    end = params.positive_integer("parameters[interval_end]") or 0
    day = datetime.fromtimestamp(start, UTC).date()
    if (start, end) != tuple(int(t) for t in day_window(CARD, day)):
        raise CardError(
            400,
            "parameter_invalid",
            "The sandbox reports one UTC day: interval_start at midnight, end 24 h later.",
            param="parameters[interval_start]",
        )
    desk: BillDesk = request.app.state.bills
    if not desk.ready(CARD, day, time.time()):
        raise CardError(
            400,
            DATA_NOT_AVAILABLE,
            "interval_end is after the data available for this report.",
            param="parameters[interval_end]",
        )
    file_id = f"{_FILE_PREFIX}{day:%Y%m%d}"
    body = await _report(desk, day)
    base = request.app.state.settings.sandbox_base_url.rstrip("/")
    run_id = "frr_" + hashlib.sha256(f"{file_id}:{time.time()}".encode()).hexdigest()[:24]
    return ReportRun(
        id=run_id,
        report_type=REPORT_TYPE,
        status="succeeded",
        parameters=ReportParameters(interval_start=start, interval_end=end),
        result=ReportFile(
            id=file_id, size=len(body), url=f"{base}/card/v1/files/{file_id}/contents"
        ),
    )


@router.get("/files/{file_id}/contents")
async def file_contents(file_id: str, request: Request) -> Response:
    day = _day_of(file_id)
    desk: BillDesk = request.app.state.bills
    if day is None or not desk.ready(CARD, day, time.time()):
        raise CardError(404, "resource_missing", "No such file.")
    body = await _report(desk, day)
    if desk.plants.corrupts(CARD, day):
        body = body[: len(body) - 7]
    return Response(body, media_type="text/csv")


def _day_of(file_id: str) -> date | None:
    try:
        return datetime.strptime(file_id.removeprefix(_FILE_PREFIX), "%Y%m%d").date()
    except ValueError:
        return None


async def _report(desk: BillDesk, day: date) -> bytes:
    """The day's report as it stands: its lines (with any plants), then its payouts."""
    return card_format.render(await desk.entries(CARD, day), await desk.store.sweeps(CARD, day))
