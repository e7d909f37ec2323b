"""Reading a WeChat Pay notification whose signature has already been verified.

    envelope        NotificationEnvelope; an event type we do not know -> None
    resource        AEAD_AES_256_GCM with the APIv3 key -> a Transaction
                    (TRANSACTION.SUCCESS) or a RefundResource (REFUND.*)
    ours?           mchid (and appid, for a transaction) must be ours,
                    else NotificationMismatch
    consistent?     the resource's state must be the one the event type names,
                    else NotificationFormatError: callers act on the kind

Pure: the caller verifies the Wechatpay-* signature over the raw body first.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from channels.base import Notification, NotificationKind
from channels.errors import NotificationFormatError, NotificationMismatch
from channels.wechatpay import mapping, wire
from channels.wechatpay.crypto import decrypt_resource

_Model = TypeVar("_Model", bound=BaseModel)

# Refund event type -> what it means for us, and the refund status its resource must carry.
_REFUND_EVENTS: dict[str, tuple[NotificationKind, wire.RefundStatus]] = {
    wire.REFUND_SUCCESS: (NotificationKind.REFUND_SUCCEEDED, "SUCCESS"),
    wire.REFUND_ABNORMAL: (NotificationKind.REFUND_FAILED, "ABNORMAL"),
    wire.REFUND_CLOSED: (NotificationKind.REFUND_FAILED, "CLOSED"),
}


def read_notification(
    body: bytes, *, api_v3_key: bytes, mchid: str, appid: str
) -> Notification | None:
    """The notification in our terms, or None for an event type that asks nothing of us."""
    envelope = _parse(wire.NotificationEnvelope, body, "notification")
    if envelope.event_type == wire.TRANSACTION_SUCCESS:
        plain = _open(envelope, api_v3_key, "transaction")
        transaction = _parse(wire.Transaction, plain, "resource")
        return _payment_notification(envelope.id, transaction, mchid=mchid, appid=appid)
    if envelope.event_type in _REFUND_EVENTS:
        refund = _parse(wire.RefundResource, _open(envelope, api_v3_key, "refund"), "resource")
        return _refund_notification(envelope, refund, mchid=mchid)
    return None


def _open(envelope: wire.NotificationEnvelope, api_v3_key: bytes, original_type: str) -> bytes:
    resource = envelope.resource
    if envelope.resource_type != wire.ENCRYPTED_RESOURCE or resource.algorithm != (
        wire.RESOURCE_ALGORITHM
    ):
        raise _malformed("resource is not AEAD_AES_256_GCM encrypted")
    if resource.original_type != original_type:
        raise _malformed(f"{envelope.event_type} carries a {resource.original_type!r} resource")
    return decrypt_resource(
        api_v3_key, resource.nonce, resource.associated_data, resource.ciphertext
    )


def _payment_notification(
    notification_id: str, transaction: wire.Transaction, *, mchid: str, appid: str
) -> Notification:
    if transaction.mchid != mchid or transaction.appid != appid:
        raise NotificationMismatch(
            "wechatpay notification is for another mchid or appid", code="notification_mismatch"
        )
    if transaction.trade_state != "SUCCESS":
        raise _malformed("TRANSACTION.SUCCESS carries a transaction that is not SUCCESS")
    return Notification(
        notification_id=notification_id,
        kind=NotificationKind.PAYMENT_SUCCEEDED,
        order_id=transaction.out_trade_no,
        channel_payment_id=transaction.out_trade_no,
        channel_txn_id=transaction.transaction_id,
        amount=transaction.amount.total,
        currency=transaction.amount.currency,
        merchant_id=transaction.attach or None,
        paid_at=_time(transaction.success_time),
        **mapping.payer_facts(
            transaction.amount.currency,
            transaction.amount.payer_total,
            transaction.amount.payer_currency,
            transaction.amount.exchange_rate,
        ),
    )


def _refund_notification(
    envelope: wire.NotificationEnvelope, refund: wire.RefundResource, *, mchid: str
) -> Notification:
    if refund.mchid != mchid:
        raise NotificationMismatch(
            "wechatpay notification is for another mchid", code="notification_mismatch"
        )
    kind, status = _REFUND_EVENTS[envelope.event_type]
    if refund.refund_status != status:
        raise _malformed(f"{envelope.event_type} carries a {refund.refund_status} refund")
    return Notification(
        notification_id=envelope.id,
        kind=kind,
        order_id=refund.out_trade_no,
        channel_payment_id=refund.out_trade_no,
        channel_txn_id=refund.transaction_id,
        amount=refund.amount.refund,
        currency=refund.amount.currency,
        merchant_id=None,  # a refund resource does not echo attach
        refund_id=refund.out_refund_no,
        **mapping.refund_facts(refund.amount),
    )


def _parse(model: type[_Model], raw: bytes, what: str) -> _Model:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _malformed(f"unreadable {what}: {exc.error_count()} error(s)") from None


def _time(rfc3339: str | None) -> datetime | None:
    """A time WeChat Pay reports; one we cannot read is not worth refusing a payment for."""
    try:
        return datetime.fromisoformat(rfc3339) if rfc3339 else None
    except ValueError:
        return None


def _malformed(message: str) -> NotificationFormatError:
    return NotificationFormatError(f"wechatpay {message}", code="notification_malformed")
