"""Which adapter serves which channel, built from settings.

Every adapter speaks its channel's real protocol; by default each points at
the sandbox's simulation of it (`{sandbox_base_url}/alipay/gateway.do`,
`/wechatpay`, `/card`). Going live is configuration: the channel's URL, ids and
keys in `settings.alipay` / `.wechatpay` / `.card`.
"""

from __future__ import annotations

import httpx

from channels.alipay.adapter import AlipayAdapter
from channels.bank import BankTransferAdapter
from channels.base import ChannelAdapter, ChannelName
from channels.card.adapter import CardAdapter
from channels.wechatpay.adapter import WeChatPayAdapter
from settings import Settings


def build_channels(settings: Settings, client: httpx.AsyncClient) -> dict[str, ChannelAdapter]:
    """One adapter per channel, all sharing `client`.

    The caller owns the client and its lifetime, and should give it
    `settings.channel_timeout_seconds` as its timeout.
    """
    sandbox = settings.sandbox_base_url.rstrip("/")
    return {
        ChannelName.ALIPAY.value: AlipayAdapter(
            settings.alipay, settings.alipay.gateway_url or f"{sandbox}/alipay/gateway.do", client
        ),
        ChannelName.WECHATPAY.value: WeChatPayAdapter(
            settings.wechatpay, settings.wechatpay.base_url or f"{sandbox}/wechatpay", client
        ),
        ChannelName.CARD.value: CardAdapter(
            settings.card,
            settings.card.base_url or f"{sandbox}/card",
            client,
            tolerance_seconds=settings.notify_tolerance_seconds,
        ),
    }


def build_bank(settings: Settings, client: httpx.AsyncClient) -> BankTransferAdapter:
    """The payout adapter, sharing `client` (owned by the caller) like `build_channels`."""
    return BankTransferAdapter(
        base_url=f"{settings.sandbox_base_url.rstrip('/')}/bank",
        api_key=settings.sandbox_api_key.get_secret_value(),
        webhook_secret=settings.sandbox_webhook_secret.get_secret_value().encode(),
        tolerance_seconds=settings.notify_tolerance_seconds,
        client=client,
    )
