"""How the sandbox sends Alipay's asynchronous notifications (`trade_status_sync`).

A form POST signed with RSA2 by "Alipay's" key over every field but `sign` and
`sign_type`, empty ones included (`channels.alipay.signing`); taken only when the
answer is HTTP 200 with the body `success`.
Retried after 4m, 10m, 10m, 1h, 2h, 6h, 15h (8 attempts in about 25 hours), as
Alipay documents. Alipay tells of payments, of trades closed unpaid
(TRADE_CLOSED) and of refunds made (with `out_biz_no`, `refund_fee`,
`gmt_refund`); a refused refund is only ever answered synchronously.

`refund_fee` here is the refund's own amount; real Alipay sends the trade's
total refunded so far. Our adapter reads refunds by query, so the two agree.

A foreign-priced trade's notification states its amounts in `trans_currency` and adds
`settle_currency`; a payment's adds the settlement and the buyer's CNY as queries
report them (`sandbox.alipay_front.trade_cross_border_fields`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay.amounts import minor_to_major
from channels.alipay.protocol import gateway_timestamp
from channels.alipay.signing import sign_notification
from channels.base import PAYER_CURRENCY
from sandbox.notifier import AnyEvent, WireMessage
from sandbox.protocol import EventData, PayoutEvent

_TRADE_STATUS = {
    "payment.succeeded": "TRADE_SUCCESS",
    "payment.declined": "TRADE_CLOSED",
    "refund.succeeded": "TRADE_SUCCESS",
}


class AlipayNotifications:
    name = "alipay"
    retry_delays: tuple[float, ...] = (240.0, 600.0, 600.0, 3600.0, 7200.0, 21600.0, 54000.0)
    event_types: frozenset[str] = frozenset(_TRADE_STATUS)

    def __init__(self, *, app_id: str, seller_id: str, key: rsa.RSAPrivateKey) -> None:
        self._app_id = app_id
        self._seller_id = seller_id
        self._key = key

    def render(self, event: AnyEvent) -> WireMessage:
        assert not isinstance(event, PayoutEvent)
        data = event.data
        now = gateway_timestamp(datetime.now(UTC))
        payment_amount = data.payment_amount if data.refund_id else data.amount
        fields = {
            "notify_time": now,
            "notify_type": "trade_status_sync",
            "notify_id": event.id,
            "app_id": self._app_id,
            "seller_id": self._seller_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": data.txn_id or data.payment_id,
            "out_trade_no": data.out_trade_no,
            "trade_status": _TRADE_STATUS[event.type],
            "total_amount": minor_to_major(payment_amount or data.amount, data.currency),
            "passback_params": quote(data.merchant_id, safe=""),
            "gmt_create": gateway_timestamp(datetime.fromtimestamp(event.created, UTC)),
        }
        if event.type == "payment.succeeded":
            fields["gmt_payment"] = fields["gmt_create"]
            fields["buyer_pay_amount"] = fields["total_amount"]
        if data.refund_id:
            fields |= {
                "out_biz_no": data.refund_id,
                "refund_fee": minor_to_major(data.amount, data.currency),
                "gmt_refund": now,
            }
        fields |= _cross_border(
            data, fields["total_amount"], paid=event.type == "payment.succeeded"
        )
        signed = sign_notification(fields, self._key)
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return WireMessage(urlencode(signed).encode(), headers)

    def accepted(self, status_code: int, body: bytes) -> bool:
        return status_code == 200 and body.strip() == b"success"


def _cross_border(data: EventData, total_amount: str, *, paid: bool) -> dict[str, str]:
    if data.currency == PAYER_CURRENCY:
        return {}
    fields = {"trans_currency": data.currency, "settle_currency": data.currency}
    if paid and data.payer_amount and data.payer_currency and data.channel_rate:
        pay_amount = minor_to_major(data.payer_amount, data.payer_currency)
        fields |= {
            "settle_amount": total_amount,
            "settle_trans_rate": "1",
            "pay_currency": data.payer_currency,
            "pay_amount": pay_amount,
            "trans_pay_rate": data.channel_rate,
            "buyer_pay_amount": pay_amount,
        }
    return fields
