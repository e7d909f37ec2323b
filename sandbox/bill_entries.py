"""A bill's lines before any channel's format, and the days channels cut their bills by.

Alipay and WeChat Pay cut their bills at Beijing midnight (a bill day is a Beijing
calendar day); the card gateway at UTC midnight.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Literal

from channels.base import ChannelName

EntryKind = Literal["payment", "refund"]
BEIJING = timezone(timedelta(hours=8))
BILL_ZONES: dict[ChannelName, tzinfo] = {
    ChannelName.ALIPAY: BEIJING,
    ChannelName.WECHATPAY: BEIJING,
    ChannelName.CARD: UTC,
}


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
    zone = BILL_ZONES[channel]
    start = datetime.combine(day, time(), zone)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def derived_trade_no(out_trade_no: str) -> str:
    """A transaction id for a payment the sandbox never took (a planted one)."""
    return "txn_" + hashlib.sha256(out_trade_no.encode()).hexdigest()[:24]
