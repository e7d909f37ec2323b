"""Each channel's daily bill (对账单): download it, check it, read it line by line.

    BillClient.download(day, directory)  asks the channel for the day's bill and writes
                                         its file into `directory`; returns the path.
                                         Raises BillNotReady (not published yet: ask
                                         later), BillCorrupt (it fails its check), or a
                                         `channels.errors.ChannelError` (unreachable,
                                         refused; `retryable` says whether to retry)
    BillClient.lines(path)               the bill's lines as `domain.bills.BillLine`s,
                                         read as they come: a bill is never held whole
    BillClient.summary(path)             the totals the bill states about itself
    BillClient.zone                      the time zone of the channel's bill day: Alipay
                                         and WeChat Pay cut at Beijing midnight, the card
                                         gateway at UTC midnight (`bill_day_window`)

Every check is the channel's own, as its SDKs make it: Alipay's answer is RSA2-signed
and its zip's CRCs must hold; WeChat Pay's answer is signed and the file's SHA1 must
be its `hash_value`; the card gateway's file must have the size its report run states.
A line's `reference` is the id we gave the channel: out_trade_no (our payment
reference, `domain.keys.payment_reference`) or our refund id.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Protocol

import httpx

from channels.alipay.bills import AlipayBillClient
from channels.base import ChannelName
from channels.card.bills import CardBillClient
from channels.wechatpay.bills import WeChatPayBillClient
from domain.bills import BillLine, BillSummary
from settings import Settings


class BillClient(Protocol):
    channel: ChannelName
    zone: tzinfo

    async def download(self, day: date, directory: Path) -> Path: ...

    def lines(self, path: Path) -> Iterator[BillLine]: ...

    def summary(self, path: Path) -> BillSummary: ...


def bill_day_window(zone: tzinfo, day: date) -> tuple[datetime, datetime]:
    """[start, end) of a bill day in `zone`, as aware datetimes."""
    start = datetime.combine(day, time(), zone)
    return start, start + timedelta(days=1)


def bill_client(channel: ChannelName, settings: Settings, client: httpx.AsyncClient) -> BillClient:
    """The bill client of `channel`, at the same address and with the same keys as its
    adapter (the defaults of `channels.registry.build_channels`); `client` is the
    caller's, as there, and should have `settings.channel_timeout_seconds`."""
    sandbox = settings.sandbox_base_url.rstrip("/")
    if channel is ChannelName.ALIPAY:
        url = settings.alipay.gateway_url or f"{sandbox}/alipay/gateway.do"
        return AlipayBillClient(settings.alipay, url, client)
    if channel is ChannelName.WECHATPAY:
        url = settings.wechatpay.base_url or f"{sandbox}/wechatpay"
        return WeChatPayBillClient(settings.wechatpay, url, client)
    return CardBillClient(settings.card, settings.card.base_url or f"{sandbox}/card", client)
