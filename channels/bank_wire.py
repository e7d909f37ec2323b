"""The bank's wire protocol: payouts and their notifications, and the error body.

Our bank adapter (`channels.bank`) parses these, and the sandbox's bank serves them as
they are, so the two cannot drift apart. This module imports only pydantic.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

PayoutStatus = Literal["pending", "paid", "failed"]
PayoutEventType = Literal["payout.paid", "payout.failed"]

# Minor units; strict so that "100" or 100.5 is refused rather than coerced.
Amount = Annotated[int, Field(gt=0, strict=True)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Key = Annotated[str, Field(min_length=1, max_length=64)]
# A decimal string, as a bank states a rate: digits, at most one point (a zero rate
# credits nothing, which the credited amount, positive, then contradicts).
Rate = Annotated[str, Field(pattern=r"^\d{1,12}(\.\d{1,18})?$")]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


class PayoutCreate(_Wire):
    """A bank transfer to a merchant; `payout_id` makes creating it idempotent."""

    payout_id: Key
    merchant_id: Key
    amount: Amount
    currency: Currency
    beneficiary: str = Field(min_length=1, max_length=128)  # e.g. a masked account name
    notify_url: str = Field(pattern=r"^https?://", max_length=2048)
    # Credit the beneficiary in this currency, converted by the bank at its rate; absent:
    # in `currency`, as it is.
    credit_currency: Currency | None = None


class Payout(_Wire):
    payout_id: str
    merchant_id: str
    amount: int
    currency: str
    status: PayoutStatus
    failure_reason: str | None  # set once failed
    bank_reference: str | None  # set once paid
    # A converted payout: the currency credited, and (fixed when the bank accepts it) the
    # amount credited and its rate (credit units per payout unit, a decimal string).
    credit_currency: Currency | None = None
    credited_amount: Amount | None = None
    credit_rate: Rate | None = None


class ErrorDetail(_Wire):
    code: str
    message: str = ""


class ErrorBody(_Wire):
    """Every error answer: `{"error": {"code": ..., "message": ...}}`."""

    error: ErrorDetail


class PayoutEvent(_Wire):
    """A payout notification body: like `Event`, but `data` is the payout itself."""

    id: str
    type: PayoutEventType
    created: int
    data: Payout


class TransferConversion(_Wire):
    """A transfer the channel converted: what it took in `source_currency`, paid in the
    transfer's currency at `rate` (transfer units per source unit, a decimal string);
    `orders` is each order's day (payment less refunds) as converted, by our order id."""

    source_currency: Currency
    rate: str
    orders: dict[str, int]


class IncomingTransfer(_Wire):
    """A transfer a payment channel made into the platform's own account: a day's takings
    in one currency, less the refunds it paid back and its fees (`net` may be negative:
    the channel took the difference)."""

    transfer_id: str
    channel: str
    day: str  # ISO date of the takings, by the channel's clock
    currency: str
    gross: int
    fees: int
    refunds: int
    net: int
    status: Literal["credited"]
    bank_reference: str
    conversion: TransferConversion | None = None


class IncomingTransfers(_Wire):
    """What the bank answers about one channel's day: its transfers (none until it settled)."""

    channel: str
    day: str
    transfers: list[IncomingTransfer]
