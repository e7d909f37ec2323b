"""The card gateway's reporting API, as both sides read it (pydantic only, like `wire`).

    POST /v1/reporting/report_runs   report_type=balance_change_from_activity.itemized.3,
                                     parameters[interval_start], parameters[interval_end]
                                     (unix seconds: one UTC day)          -> ReportRun
    GET  /v1/files/{file}/contents   the CSV (bearer auth, like every call)

Stripe's shapes, reduced: the sandbox runs a report at once (`status` succeeded);
an interval that ends after the gateway's data does is refused with 400
`data_not_available` (param `parameters[interval_end]`): ask again later. The
result's `size` is the file's length in bytes, which the download must match.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

REPORT_TYPE = "balance_change_from_activity.itemized.3"
DATA_NOT_AVAILABLE = "data_not_available"


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReportFile(_Wire):
    id: str
    object: Literal["file"] = "file"
    purpose: str = "finance_report_run"
    size: int
    type: str = "csv"
    url: str


class ReportParameters(_Wire):
    interval_start: int
    interval_end: int


class ReportRun(_Wire):
    id: str
    object: Literal["reporting.report_run"] = "reporting.report_run"
    report_type: str
    status: Literal["pending", "succeeded", "failed"]
    parameters: ReportParameters
    result: ReportFile | None = None
