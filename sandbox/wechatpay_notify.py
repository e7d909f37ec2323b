"""How the sandbox sends WeChat Pay notifications.

    body      {"id", "create_time", "resource_type": "encrypt-resource", "event_type",
              "summary", "resource": {AEAD_AES_256_GCM ciphertext of the transaction
              or refund, under the merchant's APIv3 key}}
    headers   Wechatpay-* signature by the current platform key, fresh on every attempt
    taken     HTTP 200 or 204 (the body is not read)
    retries   15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h

WeChat Pay says nothing when a buyer's payment fails (the merchant finds
PAYERROR by querying), so payment.declined is never sent.
"""

from __future__ import annotations

import json
import secrets
import time

from channels.wechatpay import wire
from channels.wechatpay.crypto import encrypt_resource
from sandbox import wechatpay_views as views
from sandbox.notifier import AnyEvent, WireMessage
from sandbox.protocol import Event
from sandbox.wechatpay_auth import signed_headers
from sandbox.wechatpay_keyring import keyring_for
from settings import Settings

RETRY_DELAYS: tuple[float, ...] = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
)  # fmt: skip

# Our event type -> WeChat Pay's event type and summary.
_EVENTS: dict[str, tuple[str, str]] = {
    "payment.succeeded": (wire.TRANSACTION_SUCCESS, "支付成功"),
    "refund.succeeded": (wire.REFUND_SUCCESS, "退款成功"),
    "refund.failed": (wire.REFUND_ABNORMAL, "退款异常"),
}


class WeChatPayNotifications:
    """Renders our events as WeChat Pay notifications for the merchant in `settings`."""

    name = "wechatpay"
    retry_delays = RETRY_DELAYS
    event_types = frozenset(_EVENTS)

    def __init__(self, settings: Settings) -> None:
        if settings.sandbox_keys is None:
            raise ValueError("WeChat Pay notifications need the sandbox's platform key")
        self._mchid = settings.wechatpay.mchid
        self._appid = settings.wechatpay.appid
        self._keyring = keyring_for(settings)  # rotation reaches the notifier too
        self._api_v3_key = settings.wechatpay.apiv3_key.get_secret_value().encode()

    def render(self, event: AnyEvent) -> WireMessage:
        if not isinstance(event, Event):
            raise TypeError(f"WeChat Pay does not send {event.type} events")
        event_type, summary = _EVENTS[event.type]
        original_type, plain = self._resource(event)
        nonce = secrets.token_hex(6)  # 12 characters: the AES-GCM nonce
        envelope = wire.NotificationEnvelope(
            id=event.id,
            create_time=views.rfc3339(event.created),
            resource_type=wire.ENCRYPTED_RESOURCE,
            event_type=event_type,
            summary=summary,
            resource=wire.EncryptedResource(
                original_type=original_type,
                algorithm=wire.RESOURCE_ALGORITHM,
                ciphertext=encrypt_resource(self._api_v3_key, nonce, original_type, plain),
                associated_data=original_type,
                nonce=nonce,
            ),
        )
        body = _json(envelope.model_dump(mode="json", exclude_none=True))
        serial_no, platform_key = self._keyring.signer()
        headers = signed_headers(
            body, serial_no=serial_no, platform_key=platform_key, now=int(time.time())
        )
        return WireMessage(body, {"Content-Type": "application/json", **headers})

    def accepted(self, status_code: int, body: bytes) -> bool:
        return status_code in (200, 204)

    def _resource(self, event: Event) -> tuple[str, bytes]:
        data = event.data
        if data.refund_id is None:
            resource = views.transaction(
                data, appid=self._appid, mchid=self._mchid, paid_at=event.created
            )
            return "transaction", _json(resource.model_dump(mode="json", exclude_none=True))
        refund = views.refund_resource(
            mchid=self._mchid,
            out_trade_no=data.out_trade_no,
            transaction_id=data.txn_id,
            out_refund_no=data.refund_id,
            status="succeeded" if data.status == "succeeded" else "failed",
            amount=data.amount,
            payment_amount=data.payment_amount,
            at=event.created,
            data=data,
        )
        # WeChat Pay's domestic refund resource states no currency: CNY goes without
        # saying. A cross-border one states the price currency it was refunded in.
        exclude = {"amount": {"currency"}} if data.currency == wire.CURRENCY else None
        return "refund", _json(refund.model_dump(mode="json", exclude_none=True, exclude=exclude))


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
