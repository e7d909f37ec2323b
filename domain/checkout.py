# ruff: noqa: RUF001, RUF002  (quantities are written with the multiplication sign, as receipts do)
"""The hosted checkout's pure parts: its link's capability, what the buyer is told they
buy, and where the buyer may be sent back to.

The link is `/checkout/{order id}?t={token}` and the token is an HMAC of the order id
under a key of ours, not a random value stored with the order: every answer that
carries the link (the creation, a retry of it with the same Idempotency-Key after a
crash) can make it again, nothing secret is stored per order, and guessing an order id
gets nowhere without the key. Rotating the key ends every link at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urlsplit

_LABEL = b"paysaga checkout link v1"
MAX_RETURN_URL_LENGTH = 2000


def checkout_key(secret: bytes) -> bytes:
    """The links' own key, derived from a platform secret under a label of its own, so
    a checkout token can never stand for anything else the secret signs."""
    return hmac.new(secret, _LABEL, hashlib.sha256).digest()


def checkout_token(key: bytes, order_id: str) -> str:
    mac = hmac.new(key, order_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_matches(key: bytes, order_id: str, token: str | None) -> bool:
    """Whether `token` opens the checkout of `order_id` (constant-time compare)."""
    if not token:
        return False
    return hmac.compare_digest(checkout_token(key, order_id).encode(), token.encode())


class _Line(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def quantity(self) -> int: ...


def purchase_summary(lines: Iterable[_Line], limit: int = 120) -> str:
    """What is being bought, as a channel's cashier shows it: "Oolong tea ×2, Tea cup"."""
    parts = [line.name if line.quantity == 1 else f"{line.name} ×{line.quantity}" for line in lines]
    summary = ", ".join(parts)
    return summary if len(summary) <= limit else summary[: limit - 1] + "…"


def payment_description(merchant_name: str, summary: str) -> str:
    """The payment's description at a channel: the shop, then the goods (WeChat Pay's
    documented form is "shop-goods"; Alipay's subject and the card page read it alike)."""
    if merchant_name and summary:
        return f"{merchant_name} - {summary}"
    return merchant_name or summary


def return_url_refusal(url: str, *, allow_http: bool) -> str | None:
    """Why `url` may not be where the checkout sends the buyer back; None when it may.

    A redirect target, not a request we make: any host will do, but only http(s), so a
    `javascript:` or `data:` URL can never become a link on our page; https unless
    `allow_http` (development and tests), and no credentials in it.
    """
    if len(url) > MAX_RETURN_URL_LENGTH:
        return f"the return URL is longer than {MAX_RETURN_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the return URL is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the return URL must be an http(s) URL with a host"
    if parts.scheme != "https" and not allow_http:
        return "the return URL must use https"
    if parts.username is not None or parts.password is not None:
        return "the return URL may not carry credentials"
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        return "the return URL may not contain spaces or control characters"
    return None
