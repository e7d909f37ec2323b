"""The WeChat Pay API v3 adapter (to be written)."""

from __future__ import annotations

import httpx

from channels.base import ChannelName
from settings import WeChatPaySettings


class WeChatPayAdapter:
    name = ChannelName.WECHATPAY

    def __init__(self, config: WeChatPaySettings, base_url: str, client: httpx.AsyncClient) -> None:
        self._config = config
        self._base_url = base_url.rstrip("/")
        self._client = client
