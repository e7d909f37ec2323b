"""The hosted checkout's link: made for an order's answer, checked by the checkout pages.

The key comes from the JWT secret under a label of its own (domain.checkout): no new
secret to provision, and rotating that secret (which signs everyone out) ends every
open checkout link too.
"""

from __future__ import annotations

from urllib.parse import quote

from domain.checkout import checkout_key, checkout_token, token_matches
from settings import Settings


def _key(settings: Settings) -> bytes:
    return checkout_key(settings.jwt_secret.get_secret_value().encode())


def checkout_path(settings: Settings, order_id: str) -> str:
    return f"/checkout/{quote(order_id, safe='')}?t={checkout_token(_key(settings), order_id)}"


def checkout_url(settings: Settings, order_id: str) -> str:
    return f"{settings.api_public_url.rstrip('/')}{checkout_path(settings, order_id)}"


def link_opens(settings: Settings, order_id: str, token: str | None) -> bool:
    return token_matches(_key(settings), order_id, token)
