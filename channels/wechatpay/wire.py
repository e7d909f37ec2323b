"""WeChat Pay API v3's JSON, as both sides read it.

The adapter builds requests and parses answers and notification resources
with these models; the sandbox validates requests and renders answers with
the same ones, so the two cannot drift apart. Field names are WeChat Pay's
own (`out_trade_no`, `trade_state`, `attach`); `channels.wechatpay.mapping`
turns them into ours.

    POST /v3/pay/transactions/native           NativeOrder   -> CodeUrl
    POST /v3/pay/transactions/jsapi            JsapiOrder    -> PrepayId
    GET  /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=   -> Transaction
    POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close     CloseOrder -> 204
    POST /v3/refund/domestic/refunds           RefundOrder   -> Refund
    GET  /v3/refund/domestic/refunds/{out_refund_no}              -> Refund
    any error                                  4xx/5xx       ErrorBody
    a notification                             NotificationEnvelope, whose resource
                                               opens to a Transaction or RefundResource
    GET  /v3/certificates                                        -> CertificateList

Amounts are integer minor units of `amount.currency`: fen for a domestic order, the
price currency's for a cross-border one (WeChat Pay's cross-border API takes the price
in `amount.currency`; the buyer pays CNY, reported as `payer_total` in `payer_currency`
with the `exchange_rate` applied: `{"type": "USERPAYMENT_RATE", "rate": <rate * 10^8>}`,
an integer, CNY per one price unit). Answers are read leniently (unknown fields are
ignored, fields WeChat Pay may leave out are optional); requests strictly,
because the sandbox answers a malformed one with 400 PARAM_ERROR.

This module imports only pydantic, so the sandbox and the adapter share it freely.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

TradeState = Literal["SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR"]
RefundStatus = Literal["SUCCESS", "CLOSED", "PROCESSING", "ABNORMAL"]

TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
REFUND_SUCCESS = "REFUND.SUCCESS"
REFUND_ABNORMAL = "REFUND.ABNORMAL"
REFUND_CLOSED = "REFUND.CLOSED"
RESOURCE_ALGORITHM = "AEAD_AES_256_GCM"
ENCRYPTED_RESOURCE = "encrypt-resource"
CERTIFICATE_ASSOCIATED_DATA = "certificate"

CURRENCY: Final = "CNY"  # domestic WeChat Pay's currency, and the buyer's in cross-border
RATE_SCALE: Final = 10**8  # exchange_rate.rate is the rate times 10^8, an integer
USERPAYMENT_RATE: Final = "USERPAYMENT_RATE"  # the price -> payer rate (payments, refunds)
OUT_TRADE_NO_MAX = 32
OUT_REFUND_NO_MAX = 64
REFUND_REASON_MAX = 80

# Fen (or the price currency's minor units); strict so that "100" or 100.5 is refused.
Fen = Annotated[int, Field(gt=0, strict=True)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Id32 = Annotated[str, Field(min_length=1, max_length=32)]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- requests ------------------------------------------------------------------


class OrderAmount(_Wire):
    total: Fen
    currency: Currency = CURRENCY


class Payer(_Wire):
    openid: str = Field(min_length=1, max_length=128)


class NativeOrder(_Wire):
    """A QR-code (native) order; `attach` comes back in queries and notifications."""

    appid: Id32
    mchid: Id32
    description: str = Field(min_length=1, max_length=127)
    out_trade_no: Annotated[str, Field(min_length=1, max_length=OUT_TRADE_NO_MAX)]
    notify_url: str = Field(pattern=r"^https?://", max_length=256)
    attach: str | None = Field(default=None, max_length=128)
    amount: OrderAmount


class JsapiOrder(NativeOrder):
    """An order paid inside WeChat (an official account or mini program) by `payer`."""

    payer: Payer


class CloseOrder(_Wire):
    mchid: Id32


class RefundOrderAmount(_Wire):
    refund: Fen
    total: Fen  # the original payment's amount, which WeChat Pay checks
    currency: Currency = CURRENCY  # the order's (price) currency


class RefundOrder(_Wire):
    """A refund; `notify_url` left out means the one configured on the merchant platform."""

    out_trade_no: Annotated[str, Field(min_length=1, max_length=OUT_TRADE_NO_MAX)]
    out_refund_no: Annotated[str, Field(min_length=1, max_length=OUT_REFUND_NO_MAX)]
    reason: str | None = Field(default=None, max_length=REFUND_REASON_MAX)
    notify_url: str | None = Field(default=None, pattern=r"^https?://", max_length=256)
    amount: RefundOrderAmount


# -- answers -------------------------------------------------------------------


class CodeUrl(_Wire):
    code_url: str


class PrepayId(_Wire):
    prepay_id: str


class ExchangeRate(_Wire):
    """The rate WeChat Pay applied: `rate / 10^8` payer units per one price unit."""

    type: str
    rate: int = Field(gt=0)


class TransactionAmount(_Wire):
    total: int
    payer_total: int | None = None
    currency: str = CURRENCY
    payer_currency: str | None = None
    exchange_rate: ExchangeRate | None = None  # cross-border orders, once paid


class Transaction(_Wire):
    """An order as a query answers it, and as a TRANSACTION.* resource tells it."""

    appid: str
    mchid: str
    out_trade_no: str
    transaction_id: str | None = None  # set once paid
    trade_type: str | None = None
    trade_state: TradeState
    trade_state_desc: str = ""
    bank_type: str | None = None
    attach: str | None = None
    success_time: str | None = None  # RFC 3339, set once paid
    payer: Payer | None = None
    amount: TransactionAmount


class RefundAmount(_Wire):
    refund: int
    total: int | None = None
    payer_total: int | None = None
    payer_refund: int | None = None
    currency: str = CURRENCY
    payer_currency: str | None = None  # cross-border refunds: the CNY given back, at
    exchange_rate: ExchangeRate | None = None  # WeChat Pay's rate of the refund


class Refund(_Wire):
    """A refund as the create and query APIs answer it."""

    refund_id: str
    out_refund_no: str
    out_trade_no: str
    transaction_id: str | None = None
    status: RefundStatus
    amount: RefundAmount


class RefundResource(_Wire):
    """A refund as a REFUND.* notification's resource tells it (`refund_status`, no currency)."""

    mchid: str
    out_trade_no: str
    transaction_id: str | None = None
    out_refund_no: str
    refund_id: str
    refund_status: RefundStatus
    success_time: str | None = None
    amount: RefundAmount


class ErrorBody(_Wire):
    code: str
    message: str = ""


# -- notifications -------------------------------------------------------------


class EncryptedResource(_Wire):
    original_type: str
    algorithm: str
    ciphertext: str
    associated_data: str = ""
    nonce: str


class NotificationEnvelope(_Wire):
    """A notification body. `id` stays the same on every delivery attempt."""

    id: str
    create_time: str
    resource_type: str
    event_type: str  # not a Literal: a new event type is acknowledged and ignored
    summary: str = ""
    resource: EncryptedResource


# -- platform certificates ---------------------------------------------------------


class EncryptedCertificate(_Wire):
    """A PEM certificate sealed with AEAD_AES_256_GCM under the APIv3 key."""

    algorithm: str
    nonce: str
    associated_data: str = ""
    ciphertext: str


class CertificateEntry(_Wire):
    serial_no: str  # the certificate's serial number in hex, as Wechatpay-Serial names it
    effective_time: str  # RFC 3339
    expire_time: str
    encrypt_certificate: EncryptedCertificate


class CertificateList(_Wire):
    data: list[CertificateEntry]
