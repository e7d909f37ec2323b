"""A bill's lines before any channel's format, and the days channels cut their bills by.

Alipay and WeChat Pay cut their bills at Beijing midnight (a bill day is a Beijing
calendar day); the card gateway at UTC midnight. The zones are
`domain.reconciliation.BILL_ZONES`, the one definition our reconciliation and sweeps use
too; a channel settles the same day its bill covers (`sandbox.sweeps`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from channels.base import ChannelName
from domain.reconciliation import CHINA_STANDARD_TIME, channel_day
from domain.reconciliation import day_window as utc_window

EntryKind = Literal["payment", "refund"]
BEIJING = CHINA_STANDARD_TIME


@dataclass(frozen=True)
class BillEntry:
    kind: EntryKind
    reference: str  # out_trade_no for a payment, our refund id for a refund
    order_reference: str  # the payment's out_trade_no (a payment's own)
    trade_no: str  # the channel's transaction id of the payment
    amount: int  # minor units, > 0
    fee: int  # minor units, >= 0: charged on a payment, given back on a refund
    currency: str
    at: float  # unix seconds
    description: str = ""
    merchant_id: str = ""  # the pass-back field (attach, passback_params)
    payment_amount: int = 0  # a refund's payment's amount (WeChat Pay's rows show it)
    created_at: float = 0.0  # when the trade was created (Alipay's 创建时间)


def day_window(channel: ChannelName, day: date) -> tuple[float, float]:
    """The channel's day in unix seconds, [start, end)."""
    start, end = utc_window(channel.value, day)
    return start.timestamp(), end.timestamp()


def day_of(channel: str, at: float) -> date:
    """The channel's business day that the unix time `at` falls in."""
    return channel_day(channel, datetime.fromtimestamp(at, UTC))


def derived_trade_no(out_trade_no: str) -> str:
    """A transaction id for a payment the sandbox never took (a planted one)."""
    return "txn_" + hashlib.sha256(out_trade_no.encode()).hexdigest()[:24]
