"""Notifications as each channel's sandbox would send them, for tests that send their own.

The message is rendered by the sandbox's own `NotifyProtocol` for the channel,
so it is byte for byte what the channel sends: RSA2-signed form fields for
Alipay, a signed and encrypted JSON envelope for WeChat Pay, an HMAC-signed
event for the card gateway. Tests then spoil one thing about it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from channels.rsa2 import new_private_key, private_key_text
from sandbox import alipay_front, card_front, wechatpay_front
from sandbox.notifier import NotifyProtocol, WireMessage
from sandbox.protocol import Event, EventData, EventType
from settings import Settings
from tests.support import settings_from_env


def payment_event(
    order: Mapping[str, Any], type_: EventType = "payment.succeeded", **data: Any
) -> Event:
    """The event the sandbox raises when the buyer pays `order` (an order as our API shows it)."""
    fields: dict[str, Any] = {
        "payment_id": order["payment"]["channel_payment_id"],
        "out_trade_no": order["id"],
        "merchant_id": order["merchant_id"],
        "amount": order["amounts"]["payable"],
        "currency": order["currency"],
        "txn_id": f"txn_test_{secrets.token_hex(8)}",
        "status": "paid",
    }
    return Event(
        id=f"evt_test_{secrets.token_hex(8)}",
        type=type_,
        created=int(time.time()),
        data=EventData(**(fields | data)),
    )


def protocol(env: Mapping[str, str], channel: str, **overrides: str) -> NotifyProtocol:
    """The channel's notification protocol, with settings `overrides` (`alipay__app_id=...`)."""
    settings = _settings(env, overrides)
    if channel == "alipay":
        return alipay_front.notifications(settings)
    if channel == "wechatpay":
        return wechatpay_front.notifications(settings)
    return card_front.notifications(settings)


def message(env: Mapping[str, str], channel: str, event: Event, **overrides: str) -> WireMessage:
    return protocol(env, channel, **overrides).render(event)


def foreign_keys(channel: str) -> dict[str, str]:
    """Overrides that make the channel's sandbox sign with a key nobody trusts."""
    other = private_key_text(new_private_key())
    return {
        "alipay": {"sandbox_keys__alipay_private_key": other},
        "wechatpay": {"sandbox_keys__wechatpay_platform_private_key": other},
        "card": {"card__webhook_secret": f"whsec_{secrets.token_urlsafe(24)}"},
    }[channel]


def _settings(env: Mapping[str, str], overrides: Mapping[str, str]) -> Settings:
    names = {f"PAYSAGA_{name.upper()}": value for name, value in overrides.items()}
    return settings_from_env({**env, **names})
