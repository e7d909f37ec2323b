"""The API (and the sandbox's controls) as a careful client calls them: on a connection
error, a timeout or a 5xx it sends the same request again, with the same Idempotency-Key,
until a deadline. What it had to retry is counted, and every 5xx is kept as evidence:
a process that is down refuses connections; one that is up should not answer 5xx.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRY_DEADLINE_S = 240.0  # longer than any outage the schedule causes, several in a row


class GaveUp(RuntimeError):
    """A request failed until its deadline: the client could not learn its outcome."""


@dataclass
class CallStats:
    retried: Counter[str] = field(default_factory=Counter)  # "ConnectError", "503", ...
    server_errors: list[str] = field(default_factory=list)  # "POST /v1/orders -> 500: ..."


class RetryingClient:
    def __init__(self, base_url: str, headers: dict[str, str], stats: CallStats) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)
        self.stats = stats

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The first answer below 500, after retrying failures (same request, same key)."""
        deadline = time.monotonic() + RETRY_DEADLINE_S
        pause = 0.2
        while True:
            try:
                response = await self._client.request(method, path, **options)
                if response.status_code < 500:
                    return response
                cause = str(response.status_code)
                self.stats.server_errors.append(
                    f"{method} {path} -> {response.status_code}: {response.text[:300]}"
                )
            except httpx.HTTPError as error:
                cause = type(error).__name__
            self.stats.retried[cause] += 1
            if time.monotonic() > deadline:
                raise GaveUp(f"{method} {path}: still failing ({cause}) after retries")
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 2.0)
