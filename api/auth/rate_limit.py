"""Sign-in and registration throttles: per account from one address, per address, and a
ceiling per account over every address.

The account-and-address pair carries the tight limit (5 a minute): a stranger guessing
from their own address is stopped there, and cannot lock the account's owner out, who
signs in from another. The per-address limit stops one address trying many accounts.
The per-account ceiling (1000 an hour by default) bounds guessing spread over many
addresses (a botnet) to that many a hour; it is far above what one address may do
(5 a minute is 300 an hour), so locking an owner out that way takes several addresses
kept at their limits for an hour.

A moving window from the `limits` library, counted where `auth_rate_storage_uri`
says: this process's memory by default (one API process, the embedded stack), or a
shared store such as Redis, so that several API replicas behind a balancer share one
count. The address is the socket peer; behind a proxy, run uvicorn with
--proxy-headers so it is the client's.
"""

from __future__ import annotations

import math
import time

from fastapi import Request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.errors import ApiError


class TooManyRequests(ApiError):
    status_code = 429
    error_type = "rate_limit_error"

    def __init__(
        self, retry_after: int, code: str = "rate_limited", message: str = "too many attempts"
    ) -> None:
        super().__init__(code, f"{message}; retry in {retry_after} s", None)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Throttle:
    def __init__(
        self,
        per_account_address: str,
        per_address: str,
        storage_uri: str = "memory://",
        *,
        per_account: str = "1000/hour",
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._per_account_address = parse(per_account_address)
        self._per_address = parse(per_address)
        self._per_account = parse(per_account)

    def hit(self, action: str, account: str, address: str) -> None:
        """Count one attempt on `account` from `address`; raise TooManyRequests when a
        window is full."""
        windows = (
            (self._per_address, ("address", address)),
            (self._per_account_address, ("pair", account, address)),
            (self._per_account, ("account", account)),
        )
        for item, keys in windows:
            if not self._limiter.hit(item, action, *keys):
                raise TooManyRequests(self._retry_after(item, action, *keys))

    def _retry_after(self, item: RateLimitItem, action: str, *keys: str) -> int:
        reset_at, _remaining = self._limiter.get_window_stats(item, action, *keys)
        return max(1, math.ceil(reset_at - time.time()))


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
