"""Reading Alipay's asynchronous notification (`trade_status_sync`), a signed form POST.

The checks Alipay asks of a merchant, in order: the RSA2 signature over every
field but `sign` and `sign_type`; `app_id` and `seller_id` are ours; the
amount is an exact amount of the trade's currency (CNY, or its `trans_currency`:
see `channels.alipay.cross_border`, whose fields a cross-border trade's notification
carries too); that `out_trade_no` is our order and `total_amount` its amount is checked
by the API, which holds the orders.

    WAIT_BUYER_PAY                          nothing to do (None)
    TRADE_SUCCESS / TRADE_FINISHED          paid, or with `out_biz_no`: that refund succeeded
    TRADE_CLOSED                            closed unpaid: the buyer can no longer pay;
                                            with `out_biz_no`: a full refund succeeded
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qsl, unquote

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay import cross_border
from channels.alipay.amounts import AmountFormatError, major_to_minor
from channels.alipay.protocol import parse_gateway_timestamp
from channels.alipay.signing import verify_notification
from channels.base import Notification, NotificationKind
from channels.errors import (
    NotificationFormatError,
    NotificationMismatch,
    NotificationSignatureError,
)

PAID_STATUSES = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
KNOWN_STATUSES = PAID_STATUSES | {"WAIT_BUYER_PAY", "TRADE_CLOSED"}
REQUIRED = ("notify_id", "app_id", "trade_status", "out_trade_no", "total_amount")


def read_form(body: bytes) -> dict[str, str]:
    """The form's fields. The signature travels inside the form, so a body that does
    not read as one (or repeats a field) cannot be verified, and is refused as such."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise NotificationSignatureError("not a form body: nothing to verify") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise NotificationSignatureError("a field appears twice: refused unverified")
    return fields


def parse_notification(
    body: bytes, *, alipay_key: rsa.RSAPublicKey, app_id: str, seller_id: str
) -> Notification | None:
    fields = read_form(body) if body else {}
    if not verify_notification(fields, alipay_key):
        raise NotificationSignatureError("alipay notification signature invalid")
    missing = [name for name in REQUIRED if not fields.get(name)]
    if missing:
        raise NotificationFormatError(f"missing fields: {', '.join(missing)}")
    if fields["app_id"] != app_id or fields.get("seller_id", seller_id) != seller_id:
        raise NotificationMismatch("the notification is for another app or seller")
    status = fields["trade_status"]
    if status not in KNOWN_STATUSES:
        raise NotificationFormatError(f"unknown trade_status {status!r}")
    if status == "WAIT_BUYER_PAY":
        return None
    refund_id = fields.get("out_biz_no") or None
    currency = cross_border.trade_currency(fields)
    try:
        amount = major_to_minor(fields["refund_fee" if refund_id else "total_amount"], currency)
        # A refund's notification repeats the trade's own CNY and rate: the refund's are
        # read by query (`refund_currency`, `pay_amount` of alipay.trade.refund).
        facts = (
            {}
            if refund_id
            else {**cross_border.payer_facts(fields), **cross_border.settle_facts(fields)}
        )
    except (AmountFormatError, KeyError):
        raise NotificationFormatError(f"an amount is not an exact {currency} amount") from None
    if refund_id:
        kind = NotificationKind.REFUND_SUCCEEDED
    elif status in PAID_STATUSES:
        kind = NotificationKind.PAYMENT_SUCCEEDED
    else:
        kind = NotificationKind.PAYMENT_DECLINED
    passback = fields.get("passback_params")
    return Notification(
        notification_id=fields["notify_id"],
        kind=kind,
        order_id=fields["out_trade_no"],
        channel_payment_id=fields["out_trade_no"],
        channel_txn_id=fields.get("trade_no") or None,
        amount=amount,
        currency=currency,
        merchant_id=unquote(passback) if passback else None,
        refund_id=refund_id,
        paid_at=_paid_at(fields) if kind == NotificationKind.PAYMENT_SUCCEEDED else None,
        **facts,
    )


def _paid_at(fields: dict[str, str]) -> datetime | None:
    """`gmt_payment` (Beijing time); one we cannot read is not worth refusing a payment for."""
    try:
        return parse_gateway_timestamp(fields["gmt_payment"])
    except (KeyError, ValueError):
        return None
