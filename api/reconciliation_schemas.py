"""What the reconciliation routes take and answer with.

Amounts are integer minor units; `ours_*` are our records' figures, `theirs_*` the
channel's bill's (None: that side has nothing). An adjustment's `amount` raises (> 0)
or lowers (< 0) the named account's balance as its holder reads it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.ledger_schemas import UtcDatetime
from domain.reconciliation import DiscrepancyType, ExceptionStatus, RunStatus

# The accounts an operator may adjust (domain.reconciliation.ADJUSTABLE_ACCOUNTS).
AdjustableKind = Literal[
    "channel_clearing", "channel_fee", "bank", "platform_commission", "merchant_available"
]
MAX_ADJUSTMENT = 10**12  # minor units: far beyond any one correction, inside BIGINT


class RunStart(BaseModel):
    """An operator's run of a past channel-day (one run per channel-day, however often)."""

    model_config = ConfigDict(extra="forbid")
    channel: Annotated[str, Field(max_length=32)]
    day: date

    @field_validator("day", mode="before")
    @classmethod
    def _iso_string(cls, value: object) -> object:
        if not isinstance(value, str):
            raise ValueError("a day is a string: YYYY-MM-DD")
        return value


class RunOut(BaseModel):
    channel: str
    day: date
    status: RunStatus
    bill_lines: int
    exception_count: int
    auto_resolved_count: int
    open_count: int
    counts: dict[str, int]  # exceptions by type
    started_at: UtcDatetime
    finished_at: UtcDatetime | None


class ExceptionOut(BaseModel):
    id: str
    channel: str
    day: date
    type: DiscrepancyType
    line_kind: str | None
    reference: str
    order_id: str | None
    currency: str | None
    ours_amount: int | None
    theirs_amount: int | None
    ours_fee: int | None
    theirs_fee: int | None
    ours_status: str | None
    channel_txn_id: str | None
    detail: str
    auto_action: str | None
    status: ExceptionStatus
    resolution_reason: str | None
    resolved_by: str | None
    resolved_at: UtcDatetime | None
    adjustment_entry_id: str | None
    created_at: UtcDatetime


class ExceptionPage(BaseModel):
    data: list[ExceptionOut]
    has_more: bool
    next_cursor: str | None


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_kind: AdjustableKind
    # A merchant's id for merchant_available; otherwise the exception's channel or the
    # platform, which is what an omitted owner means.
    owner: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] | None
    ) = None
    amount: Annotated[int, Field(ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None


class ResolveIn(BaseModel):
    """Why the exception is closed, and the adjusting entry if money must move."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=3, max_length=500)]
    adjustment: AdjustmentIn | None = None
