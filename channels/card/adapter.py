"""The card gateway adapter (to be written)."""

from __future__ import annotations

import httpx

from channels.base import ChannelName
from settings import CardSettings


class CardAdapter:
    name = ChannelName.CARD

    def __init__(
        self,
        config: CardSettings,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        tolerance_seconds: int,
    ) -> None:
        self._config = config
        self._base_url = base_url.rstrip("/")
        self._client = client
        self._tolerance_seconds = tolerance_seconds
