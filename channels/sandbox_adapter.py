"""The adapter for the sandbox channel: our `ChannelAdapter` over its HTTP API.

Request/response mapping lives in small pure functions below; the I/O and the
mapping of HTTP outcomes to `channels.errors` live in `channels._sandbox_http`,
shared with the bank adapter:

    transport error, timeout, 408, 429, 5xx  -> ChannelUnavailable (retry may help)
    404                                      -> PaymentNotFound
    any other 4xx                            -> ChannelRejected(code=<the channel's code>)

The API key and webhook secret never appear in a message or a log line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from channels._sandbox_http import (
    ACKNOWLEDGEMENT,
    SandboxHttp,
    read_notification,
    segment,
    unix_now,
)
from channels.base import (
    Acknowledgement,
    ChannelName,
    CloseResult,
    CreatedPayment,
    CreatePaymentRequest,
    Notification,
    NotificationKind,
    PaymentState,
    PaymentStatus,
    RefundRequest,
    RefundState,
    RefundStatus,
)
from channels.errors import PaymentNotFound
from channels.sandbox import protocol as wire

_PAYMENT_STATUS: dict[wire.PaymentStatus, PaymentStatus] = {
    "pending": PaymentStatus.PENDING,
    "paid": PaymentStatus.PAID,
    "declined": PaymentStatus.DECLINED,
    "closed": PaymentStatus.CLOSED,
}
_REFUND_STATUS: dict[wire.RefundStatus, RefundStatus] = {
    "pending": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
}
_NOTIFICATION_KIND: dict[wire.EventType, NotificationKind] = {
    "payment.succeeded": NotificationKind.PAYMENT_SUCCEEDED,
    "payment.declined": NotificationKind.PAYMENT_DECLINED,
    "refund.succeeded": NotificationKind.REFUND_SUCCEEDED,
    "refund.failed": NotificationKind.REFUND_FAILED,
}


class SandboxChannel:
    """One simulated channel (`alipay`, `wechatpay` or `card`) of the sandbox.

    `base_url` already ends in the channel's path (`.../alipay`). The client is
    injected so that its timeout and connection pool are owned by the caller.
    """

    def __init__(
        self,
        name: ChannelName,
        base_url: str,
        api_key: str,
        webhook_secret: bytes,
        tolerance_seconds: int,
        client: httpx.AsyncClient,
        clock: Callable[[], int] = unix_now,
    ) -> None:
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._http = SandboxHttp(name.value, base_url, api_key, client, PaymentNotFound)
        self._webhook_secret = webhook_secret
        self._tolerance_seconds = tolerance_seconds
        self._clock = clock

    def __repr__(self) -> str:  # keep the key out of any accidental repr
        return f"SandboxChannel(name={self.name.value!r}, base_url={self._base_url!r})"

    async def create_payment(self, request: CreatePaymentRequest) -> CreatedPayment:
        # model_construct: the channel validates its own rules and answers 400.
        body = wire.PaymentCreate.model_construct(
            out_trade_no=request.order_id,
            merchant_id=request.merchant_id,
            amount=request.amount,
            currency=request.currency,
            description=request.description,
            notify_url=request.notify_url,
        )
        payment = await self._http.call("POST", "/api/payments", wire.Payment, body)
        return CreatedPayment(
            channel_payment_id=payment.payment_id,
            checkout_url=payment.checkout_url,
            qr_payload=payment.qr_payload,
        )

    async def query_payment(self, order_id: str) -> PaymentState:
        payment = await self._http.call("GET", f"/api/payments/{segment(order_id)}", wire.Payment)
        return _payment_state(payment)

    async def close_payment(self, order_id: str) -> CloseResult:
        path = f"/api/payments/{segment(order_id)}/close"
        result = await self._http.call("POST", path, wire.CloseResponse)
        return CloseResult(closed=result.closed, payment=_payment_state(result.payment))

    async def refund(self, request: RefundRequest) -> RefundState:
        body = wire.RefundCreate.model_construct(
            refund_id=request.refund_id,
            out_trade_no=request.order_id,
            amount=request.amount,
            currency=request.currency,
            reason=request.reason,
        )
        return _refund_state(await self._http.call("POST", "/api/refunds", wire.Refund, body))

    async def query_refund(self, refund_id: str) -> RefundState:
        path = f"/api/refunds/{segment(refund_id)}"
        return _refund_state(await self._http.call("GET", path, wire.Refund))

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        event = read_notification(
            wire.Event,
            headers,
            body,
            secret=self._webhook_secret,
            now=self._clock(),
            tolerance_seconds=self._tolerance_seconds,
            name=self.name.value,
        )
        return _notification(event)

    def acknowledgement(self) -> Acknowledgement:
        return ACKNOWLEDGEMENT


def _payment_state(payment: wire.Payment) -> PaymentState:
    return PaymentState(
        order_id=payment.out_trade_no,
        channel_payment_id=payment.payment_id,
        status=_PAYMENT_STATUS[payment.status],
        amount=payment.amount,
        currency=payment.currency,
        merchant_id=payment.merchant_id,
        channel_txn_id=payment.txn_id,
    )


def _refund_state(refund: wire.Refund) -> RefundState:
    return RefundState(
        refund_id=refund.refund_id,
        order_id=refund.out_trade_no,
        status=_REFUND_STATUS[refund.status],
        amount=refund.amount,
        currency=refund.currency,
        failure_reason=refund.failure_reason,
    )


def _notification(event: wire.Event) -> Notification:
    data = event.data
    return Notification(
        notification_id=event.id,
        kind=_NOTIFICATION_KIND[event.type],
        order_id=data.out_trade_no,
        channel_payment_id=data.payment_id,
        channel_txn_id=data.txn_id,
        amount=data.amount,
        currency=data.currency,
        merchant_id=data.merchant_id,
        refund_id=data.refund_id,
    )
