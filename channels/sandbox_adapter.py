"""The adapter for the sandbox channel: our `ChannelAdapter` over its HTTP API.

Request/response mapping lives in small pure functions below; `_call` is the
only place that does I/O and the only place that turns HTTP outcomes into
`channels.errors`:

    transport error, timeout, 408, 429, 5xx  -> ChannelUnavailable (retry may help)
    404                                      -> PaymentNotFound
    any other 4xx                            -> ChannelRejected(code=<the channel's code>)

The API key and webhook secret never appear in a message or a log line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

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
from channels.errors import (
    ChannelRejected,
    ChannelUnavailable,
    NotificationFormatError,
    PaymentNotFound,
)
from channels.sandbox import protocol as wire
from channels.signature import SIGNATURE_HEADER, verify

_Response = TypeVar("_Response", bound=BaseModel)

_RETRYABLE_STATUSES = frozenset({408, 429})

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

ACKNOWLEDGEMENT = Acknowledgement(
    status_code=200, body='{"received":true}', media_type="application/json"
)


def unix_now() -> int:
    return int(time.time())


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
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._webhook_secret = webhook_secret
        self._tolerance_seconds = tolerance_seconds
        self._client = client
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
        payment = await self._call("POST", "/api/payments", wire.Payment, body)
        return CreatedPayment(
            channel_payment_id=payment.payment_id,
            checkout_url=payment.checkout_url,
            qr_payload=payment.qr_payload,
        )

    async def query_payment(self, order_id: str) -> PaymentState:
        payment = await self._call("GET", f"/api/payments/{_segment(order_id)}", wire.Payment)
        return _payment_state(payment)

    async def close_payment(self, order_id: str) -> CloseResult:
        path = f"/api/payments/{_segment(order_id)}/close"
        result = await self._call("POST", path, wire.CloseResponse)
        return CloseResult(closed=result.closed, payment=_payment_state(result.payment))

    async def refund(self, request: RefundRequest) -> RefundState:
        body = wire.RefundCreate.model_construct(
            refund_id=request.refund_id,
            out_trade_no=request.order_id,
            amount=request.amount,
            currency=request.currency,
            reason=request.reason,
        )
        return _refund_state(await self._call("POST", "/api/refunds", wire.Refund, body))

    async def query_refund(self, refund_id: str) -> RefundState:
        path = f"/api/refunds/{_segment(refund_id)}"
        return _refund_state(await self._call("GET", path, wire.Refund))

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        verify(
            self._webhook_secret,
            body,
            _header(headers, SIGNATURE_HEADER),
            now=self._clock(),
            tolerance_seconds=self._tolerance_seconds,
        )
        try:
            event = wire.Event.model_validate_json(body)
        except ValidationError as exc:
            raise NotificationFormatError(
                f"unreadable {self.name} notification: {exc.error_count()} error(s)",
                code="notification_malformed",
            ) from None
        return _notification(event)

    def acknowledgement(self) -> Acknowledgement:
        return ACKNOWLEDGEMENT

    async def _call(
        self,
        method: str,
        path: str,
        response_model: type[_Response],
        body: BaseModel | None = None,
    ) -> _Response:
        """Send one request and parse the answer, mapping every failure to a ChannelError."""
        what = f"{self.name} {method} {path}"
        kwargs: dict[str, Any] = {"headers": self._auth}
        if body is not None:
            kwargs["json"] = body.model_dump(mode="json")
        try:
            response = await self._client.request(method, self._base_url + path, **kwargs)
        except httpx.TimeoutException:
            raise ChannelUnavailable(f"{what}: timed out", code="timeout") from None
        except httpx.TransportError as exc:
            # The exception type says enough; its text could echo request details.
            raise ChannelUnavailable(f"{what}: {type(exc).__name__}", code="unreachable") from None
        _raise_for_status(what, response)
        try:
            return response_model.model_validate_json(response.content)
        except ValidationError:
            raise ChannelUnavailable(
                f"{what}: unreadable response", code="invalid_response"
            ) from None


def _raise_for_status(what: str, response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    code = _error_code(response)
    message = f"{what}: HTTP {status} {code}"
    if status >= 500 or status in _RETRYABLE_STATUSES:
        raise ChannelUnavailable(message, code=code)
    if status == 404:
        raise PaymentNotFound(message, code=code)
    raise ChannelRejected(message, code=code)


def _error_code(response: httpx.Response) -> str:
    try:
        return wire.ErrorBody.model_validate_json(response.content).error.code
    except ValidationError:
        return f"http_{response.status_code}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that also works for a plain dict."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _segment(value: str) -> str:
    return quote(value, safe="")


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
