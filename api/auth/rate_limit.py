"""Sign-in and registration throttles, per account and per client address.

A moving window from the `limits` library, counted where `auth_rate_storage_uri`
says: this process's memory by default (one API process, the embedded stack), or a
shared store such as Redis, so that several API replicas behind a balancer share one
count. The address is the socket peer; behind a proxy, run uvicorn with
--proxy-headers so it is the client's.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.errors import ApiError


class TooManyRequests(ApiError):
    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, retry_after: int) -> None:
        super().__init__("rate_limited", f"too many attempts; retry in {retry_after} s", None)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Throttle:
    def __init__(self, per_account: str, per_address: str, storage_uri: str = "memory://") -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._per_account = parse(per_account)
        self._per_address = parse(per_address)

    def hit(self, action: str, account: str, address: str) -> None:
        """Count one attempt; raise TooManyRequests when either window is full."""
        for item, key in ((self._per_address, address), (self._per_account, account)):
            if not self._limiter.hit(item, action, key):
                raise TooManyRequests(self._retry_after(item, action, key))

    def _retry_after(self, item: RateLimitItem, action: str, key: str) -> int:
        reset_at, _remaining = self._limiter.get_window_stats(item, action, key)
        return max(1, math.ceil(reset_at - time.time()))
