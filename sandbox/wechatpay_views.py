"""The sandbox's payments and refunds in WeChat Pay's words, and its errors as WeChat Pay's.

    pending -> NOTPAY   paid -> SUCCESS   declined -> PAYERROR   closed -> CLOSED
    refund pending -> PROCESSING   succeeded -> SUCCESS   failed -> ABNORMAL

A cross-border order (a price in another currency than CNY) reports, once paid, the
buyer's CNY as `payer_total` in `payer_currency` and the sandbox wallets' rate as
`exchange_rate` {type USERPAYMENT_RATE, rate: CNY per price unit times 10^8}; a
refund of one, the CNY given back (`payer_refund`) at the rate of its own moment.

WeChat Pay has ids of its own that the sandbox core does not keep (a refund's
refund_id, a JSAPI prepay_id, the buyer's openid); they are derived from the
core's ids, so every answer and notification about one thing names it alike.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Protocol

from channels.wechatpay import wire
from channels.wechatpay.crypto import encrypt_resource
from sandbox.errors import SandboxError
from sandbox.protocol import EventData, Payment, PaymentFacts, Refund, RefundStatus
from sandbox.wechatpay_keyring import IssuedCertificate

_TRADE_STATE: dict[str, tuple[wire.TradeState, str]] = {
    "pending": ("NOTPAY", "订单未支付"),
    "paid": ("SUCCESS", "支付成功"),
    "declined": ("PAYERROR", "支付失败"),
    "closed": ("CLOSED", "订单已关闭"),
}
REFUND_STATUS: dict[RefundStatus, wire.RefundStatus] = {
    "pending": "PROCESSING",
    "succeeded": "SUCCESS",
    "failed": "ABNORMAL",
}
# The sandbox core's error codes -> WeChat Pay's (status, code). Others: 400
# INVALID_REQUEST, or 500 SYSTEM_ERROR for the core's 5xx (its injected faults).
_ERRORS: dict[str, tuple[int, str]] = {
    "payment_not_found": (404, "ORDER_NOT_EXIST"),
    "refund_not_found": (404, "RESOURCE_NOT_EXISTS"),
    "out_trade_no_conflict": (403, "OUT_TRADE_NO_USED"),
    "currency_mismatch": (400, "PARAM_ERROR"),
}
_CHINA = timezone(timedelta(hours=8))  # WeChat Pay writes its times in Beijing time


def transaction(
    payment: PaymentFacts, *, appid: str, mchid: str, paid_at: int | None
) -> wire.Transaction:
    """The order as WeChat Pay tells it; `paid_at` (unix) when a notification knows it."""
    trade_state, description = _TRADE_STATE[payment.status]
    paid = payment.status == "paid"
    return wire.Transaction(
        appid=appid,
        mchid=mchid,
        out_trade_no=payment.out_trade_no,
        transaction_id=payment.txn_id,
        trade_state=trade_state,
        trade_state_desc=description,
        bank_type="OTHERS" if paid else None,
        attach=payment.merchant_id,
        success_time=rfc3339(paid_at) if paid and paid_at is not None else None,
        payer=wire.Payer(openid=derived_id("o", payment.payment_id)) if paid else None,
        amount=_transaction_amount(payment)
        if paid
        else wire.TransactionAmount(total=payment.amount, currency=payment.currency),
    )


def _transaction_amount(payment: PaymentFacts) -> wire.TransactionAmount:
    """A paid order's amounts: the buyer paid the price itself, or CNY at our rate."""
    if payment.payer_amount is None or payment.payer_currency is None:
        return wire.TransactionAmount(
            total=payment.amount,
            payer_total=payment.amount,
            currency=payment.currency,
            payer_currency=payment.currency,
        )
    return wire.TransactionAmount(
        total=payment.amount,
        payer_total=payment.payer_amount,
        currency=payment.currency,
        payer_currency=payment.payer_currency,
        exchange_rate=exchange_rate(payment.channel_rate),
    )


def exchange_rate(channel_rate: str | None) -> wire.ExchangeRate | None:
    """CNY per price unit as WeChat Pay writes it: an integer, the rate times 10^8."""
    if channel_rate is None:
        return None
    scaled = Decimal(channel_rate).scaleb(8)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"a rate with more than 8 decimals: {channel_rate}")
    return wire.ExchangeRate(type=wire.USERPAYMENT_RATE, rate=int(scaled))


def refund(refund: Refund, payment: Payment) -> wire.Refund:
    return wire.Refund(
        refund_id=refund_id(refund.refund_id),
        out_refund_no=refund.refund_id,
        out_trade_no=refund.out_trade_no,
        transaction_id=payment.txn_id,
        status=REFUND_STATUS[refund.status],
        amount=_refund_amount(refund.amount, payment.amount, refund.currency, refund, payment),
    )


def _refund_amount(
    refunded: int,
    total: int | None,
    currency: str,
    refund: PayerSide | None = None,
    payment: PayerSide | None = None,
) -> wire.RefundAmount:
    """A refund's amounts; a cross-border one's payer side is the CNY it gave back."""
    if refund is None or refund.payer_amount is None or refund.payer_currency is None:
        return wire.RefundAmount(
            refund=refunded,
            total=total,
            payer_total=total,
            payer_refund=refunded,
            currency=currency,
        )
    return wire.RefundAmount(
        refund=refunded,
        total=total,
        payer_total=payment.payer_amount if payment is not None else None,
        payer_refund=refund.payer_amount,
        currency=currency,
        payer_currency=refund.payer_currency,
        exchange_rate=exchange_rate(refund.channel_rate),
    )


def refund_resource(
    *,
    mchid: str,
    out_trade_no: str,
    transaction_id: str | None,
    out_refund_no: str,
    status: RefundStatus,
    amount: int,
    payment_amount: int | None,
    at: int,
    data: EventData | None = None,
) -> wire.RefundResource:
    """A REFUND.* notification's resource; `data` (the event's) for a cross-border one."""
    refund_status = REFUND_STATUS[status]
    currency = data.currency if data is not None else wire.CURRENCY
    payment = _PaymentPayer(data.payment_payer_amount) if data is not None else None
    return wire.RefundResource(
        mchid=mchid,
        out_trade_no=out_trade_no,
        transaction_id=transaction_id,
        out_refund_no=out_refund_no,
        refund_id=refund_id(out_refund_no),
        refund_status=refund_status,
        success_time=rfc3339(at) if refund_status == "SUCCESS" else None,
        amount=_refund_amount(amount, payment_amount, currency, data, payment),
    )


class PayerSide(Protocol):
    """The buyer's side of a payment or refund, as the core records it."""

    @property
    def payer_amount(self) -> int | None: ...
    @property
    def payer_currency(self) -> str | None: ...
    @property
    def channel_rate(self) -> str | None: ...


@dataclass(frozen=True)
class _PaymentPayer:
    """A refund event's payment side: only its CNY total is known, and needed."""

    payer_amount: int | None
    payer_currency: str | None = None
    channel_rate: str | None = None


def certificate_list(
    certificates: list[IssuedCertificate], api_v3_key: bytes
) -> wire.CertificateList:
    """GET /v3/certificates: each certificate sealed with the merchant's APIv3 key."""
    return wire.CertificateList(data=[_certificate_entry(c, api_v3_key) for c in certificates])


def _certificate_entry(certificate: IssuedCertificate, api_v3_key: bytes) -> wire.CertificateEntry:
    nonce = secrets.token_hex(6)  # 12 characters: the AES-GCM nonce
    associated_data = wire.CERTIFICATE_ASSOCIATED_DATA
    return wire.CertificateEntry(
        serial_no=certificate.serial_no,
        effective_time=rfc3339(int(certificate.not_before.timestamp())),
        expire_time=rfc3339(int(certificate.not_after.timestamp())),
        encrypt_certificate=wire.EncryptedCertificate(
            algorithm=wire.RESOURCE_ALGORITHM,
            nonce=nonce,
            associated_data=associated_data,
            ciphertext=encrypt_resource(api_v3_key, nonce, associated_data, certificate.pem),
        ),
    )


def wechat_error(error: SandboxError) -> tuple[int, str]:
    if error.code in _ERRORS:
        return _ERRORS[error.code]
    return (500, "SYSTEM_ERROR") if error.status_code >= 500 else (400, "INVALID_REQUEST")


def refund_id(out_refund_no: str) -> str:
    return derived_id("50", out_refund_no)


def derived_id(prefix: str, source: str) -> str:
    return prefix + hashlib.sha256(source.encode()).hexdigest()[:28]


def rfc3339(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).astimezone(_CHINA).isoformat()
