"""Which adapter serves which channel.

Today every channel, and the bank that pays merchants out, is simulated by the
sandbox; when a real Alipay, WeChat Pay or bank adapter lands, only this
mapping changes.
"""

from __future__ import annotations

import httpx

from channels.bank import BankTransferAdapter
from channels.base import ChannelAdapter, ChannelName
from channels.sandbox_adapter import SandboxChannel
from settings import Settings


def build_channels(settings: Settings, client: httpx.AsyncClient) -> dict[str, ChannelAdapter]:
    """One adapter per channel, all sharing `client`.

    The caller owns the client and its lifetime, and should give it
    `settings.channel_timeout_seconds` as its timeout.
    """
    base_url = settings.sandbox_base_url.rstrip("/")
    api_key = settings.sandbox_api_key.get_secret_value()
    webhook_secret = settings.sandbox_webhook_secret.get_secret_value().encode()
    return {
        name.value: SandboxChannel(
            name=name,
            base_url=f"{base_url}/{name}",
            api_key=api_key,
            webhook_secret=webhook_secret,
            tolerance_seconds=settings.notify_tolerance_seconds,
            client=client,
        )
        for name in ChannelName
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
