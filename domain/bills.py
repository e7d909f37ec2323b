"""A channel's bill (对账单), line by line, in our terms.

Each channel publishes, per day, what it says happened: the payments it took, the
refunds it paid back, its fees, and what it paid into our bank. The adapters in
`channels/*/bills.py` download, verify and parse the channel's own format (Alipay's
zipped GBK CSV, WeChat Pay's backtick CSV, the card gateway's balance transactions)
into `BillLine`s; reconciliation matches these against our records. Nothing outside
`channels/` sees a bill's wire format.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime


class BillLineKind(enum.StrEnum):
    PAYMENT = "payment"  # the buyer paid (gross); `reference` is our payment reference
    REFUND = "refund"  # the channel paid a buyer back; `reference` is our refund id
    # The channel paid our bank what it held for the bill's day (its settlement of that
    # business day); `reference` is its transfer id. Matched per currency against the
    # sweeps we posted for the channel-day (db.reconciliation_match).
    SWEEP = "sweep"


@dataclass(frozen=True, slots=True)
class BillLine:
    channel: str  # channels.base.ChannelName value
    kind: BillLineKind
    reference: str  # our id the channel was given (out_trade_no, out_refund_no) or the sweep's
    channel_id: str  # the channel's own id for the transaction
    order_reference: str  # a refund's payment reference; a payment's own; "" for a sweep
    currency: str  # ISO 4217
    amount: int  # minor units, > 0: the money that moved
    fee: int  # minor units, >= 0: the channel's fee on this line (returned fee on refunds)
    at: datetime  # when it happened, by the channel's clock, UTC


@dataclass(frozen=True, slots=True)
class BillSummary:
    """The totals the bill states about itself (its summary rows); checked against its lines."""

    day: date
    lines: int
    payments: int  # gross minor units paid
    refunds: int  # minor units refunded
    fees: int  # net fees


class BillNotReady(Exception):
    """The channel has not published the day's bill yet: ask again later."""


class BillCorrupt(Exception):
    """The bill downloaded does not match its stated hash, or cannot be read."""
