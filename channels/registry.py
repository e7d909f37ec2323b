"""Which adapter serves which channel.

Today every channel is simulated by the sandbox; when a real Alipay or WeChat
Pay adapter lands, only this mapping changes.
"""

from __future__ import annotations

import httpx

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
