"""The Alipay adapter: our `ChannelAdapter` over the open platform's gateway (RSA2).

    create_payment   alipay.trade.precreate (a QR code) + a signed alipay.trade.page.pay
                     URL as the web checkout; the shop's id rides in `passback_params`
    query_payment    alipay.trade.query
    close_payment    alipay.trade.close (only while WAIT_BUYER_PAY), then a query
    refund           alipay.trade.refund with out_request_no = our refund id
    query_refund     alipay.trade.fastpay.refund.query

Alipay takes CNY, and foreign price currencies through its cross-border fields:
`total_amount` in the price currency with `trans_currency` and `settle_currency` (both
the price currency: Alipay settles to us in it), `refund_currency` on refunds; a
domestic CNY request is sent exactly as before. What Alipay reports back (the CNY the
buyer paid, its rate, the settlement) is read by `channels.alipay.cross_border`.
Alipay's query answers do not echo `passback_params`, so a queried payment reports
`merchant_id=None`. The app's private key never
appears in a message, a repr or a log line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from channels.alipay import cross_border
from channels.alipay import protocol as gateway
from channels.alipay.amounts import AmountFormatError, major_to_minor, minor_to_major
from channels.alipay.notification import PAID_STATUSES, parse_notification
from channels.base import (
    Acknowledgement,
    ChannelName,
    CloseResult,
    CreatedPayment,
    CreatePaymentRequest,
    Notification,
    PaymentState,
    PaymentStatus,
    RefundRequest,
    RefundState,
    RefundStatus,
    supports_currency,
)
from channels.errors import ChannelRejected, ChannelUnavailable, PaymentNotFound
from channels.http import raise_for_status, send
from channels.rsa2 import load_private_key, load_public_key
from settings import AlipaySettings

CURRENCY = cross_border.DOMESTIC_CURRENCY
_FORM = "application/x-www-form-urlencoded;charset=utf-8"
_TRADE_STATUS = {
    "WAIT_BUYER_PAY": PaymentStatus.PENDING,
    "TRADE_SUCCESS": PaymentStatus.PAID,
    "TRADE_FINISHED": PaymentStatus.PAID,
    "TRADE_CLOSED": PaymentStatus.CLOSED,
}


def _now() -> datetime:
    return datetime.now(UTC)


class AlipayAdapter:
    name = ChannelName.ALIPAY

    def __init__(
        self,
        config: AlipaySettings,
        gateway_url: str,
        client: httpx.AsyncClient,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._app_id = config.app_id
        self._seller_id = config.seller_id
        self._app_key = load_private_key(config.app_private_key.get_secret_value())
        self._alipay_key = load_public_key(config.alipay_public_key)
        self._gateway_url = gateway_url
        self._client = client
        self._clock = clock

    def __repr__(self) -> str:  # keep the key out of any accidental repr
        return f"AlipayAdapter(app_id={self._app_id!r}, gateway_url={self._gateway_url!r})"

    async def create_payment(self, request: CreatePaymentRequest) -> CreatedPayment:
        _check_currency(request.currency)
        _check_id(request.order_id, "out_trade_no")
        biz = {
            "out_trade_no": request.order_id,
            "total_amount": _major(request.amount, request.currency),
            "subject": request.description[:256] or request.order_id,
            "passback_params": quote(request.merchant_id, safe=""),
        }
        if request.currency != CURRENCY:
            biz |= {"trans_currency": request.currency, "settle_currency": request.currency}
        node = await self._call(gateway.PRECREATE, biz, notify_url=request.notify_url)
        page_pay = self._signed(
            gateway.PAGE_PAY,
            {**biz, "product_code": "FAST_INSTANT_TRADE_PAY"},
            notify_url=request.notify_url,
        )
        return CreatedPayment(
            channel_payment_id=request.order_id,
            checkout_url=f"{self._gateway_url}?{urlencode(page_pay)}",
            qr_payload=str(node.get("qr_code", "")) or None,
        )

    async def query_payment(self, order_id: str) -> PaymentState:
        node = await self._call(gateway.QUERY, {"out_trade_no": order_id})
        return _payment_state(order_id, node)

    async def close_payment(self, order_id: str) -> CloseResult:
        try:
            await self._call(gateway.CLOSE, {"out_trade_no": order_id})
        except ChannelRejected as refusal:
            # ACQ.TRADE_STATUS_ERROR: no longer WAIT_BUYER_PAY. The query says why.
            if isinstance(refusal, PaymentNotFound) or refusal.code != "ACQ.TRADE_STATUS_ERROR":
                raise
        state = await self.query_payment(order_id)
        return CloseResult(closed=state.status != PaymentStatus.PAID, payment=state)

    async def refund(self, request: RefundRequest) -> RefundState:
        _check_currency(request.currency)
        _check_id(request.refund_id, "out_request_no")
        biz = {
            "out_trade_no": request.order_id,
            "refund_amount": _major(request.amount, request.currency),
            "out_request_no": request.refund_id,
            "refund_reason": request.reason[:256],
        }
        if request.currency != CURRENCY:
            biz["refund_currency"] = request.currency
        node = await self._call(gateway.REFUND, biz)
        # fund_change "N" also answers a repeat of a refund already made: ask to be sure.
        if node.get("fund_change") != "Y":
            return await self.query_refund(request.refund_id, request.order_id)
        return RefundState(
            refund_id=request.refund_id,
            order_id=request.order_id,
            status=RefundStatus.SUCCEEDED,
            amount=request.amount,
            currency=request.currency,
            **_refund_facts(node, request.currency),
        )

    async def query_refund(self, refund_id: str, order_id: str) -> RefundState:
        biz = {"out_trade_no": order_id, "out_request_no": refund_id}
        node = await self._call(gateway.REFUND_QUERY, biz)
        if not node.get("refund_amount"):  # Alipay's way of saying "no such refund"
            raise PaymentNotFound(f"alipay: no refund {refund_id}", code="refund_not_found")
        status = str(node.get("refund_status") or "REFUND_SUCCESS")
        currency = str(node.get("refund_currency") or CURRENCY)
        return RefundState(
            refund_id=refund_id,
            order_id=order_id,
            status=RefundStatus.SUCCEEDED if status == "REFUND_SUCCESS" else RefundStatus.PENDING,
            amount=_minor(node, "refund_amount", currency),
            currency=currency,
            **_refund_facts(node, currency),
        )

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification | None:
        return parse_notification(
            body, alipay_key=self._alipay_key, app_id=self._app_id, seller_id=self._seller_id
        )

    def acknowledgement(self) -> Acknowledgement:
        return Acknowledgement(status_code=200, body="success", media_type="text/plain")

    def rejection(self, status_code: int, error: Mapping[str, object]) -> Acknowledgement:
        # Anything but `success` makes Alipay send again; keep our JSON error for people.
        return Acknowledgement(
            status_code=status_code,
            body=json.dumps(error, separators=(",", ":")),
            media_type="application/json",
        )

    def _signed(
        self, method: str, biz: Mapping[str, Any], notify_url: str | None = None
    ) -> dict[str, str]:
        return gateway.signed_request(
            app_id=self._app_id,
            method=method,
            biz_content=biz,
            key=self._app_key,
            now=self._clock(),
            notify_url=notify_url,
        )

    async def _call(
        self, method: str, biz: Mapping[str, Any], notify_url: str | None = None
    ) -> dict[str, Any]:
        params = self._signed(method, biz, notify_url)
        what = f"alipay {method}"
        response = await send(
            self._client,
            what,
            "POST",
            self._gateway_url,
            content=urlencode(params),
            headers={"Content-Type": _FORM},
        )
        # Alipay answers everything, errors included, with HTTP 200 and a code.
        raise_for_status(what, response.status_code, f"http_{response.status_code}")
        return gateway.read_response(method, response.content, self._alipay_key)


def _payment_state(order_id: str, node: Mapping[str, Any]) -> PaymentState:
    status = str(node.get("trade_status", ""))
    if status not in _TRADE_STATUS:
        raise ChannelUnavailable(
            f"alipay: unknown trade_status {status!r}", code="invalid_response"
        )
    currency = cross_border.trade_currency(node)
    return PaymentState(
        order_id=order_id,
        channel_payment_id=order_id,
        status=_TRADE_STATUS[status],
        amount=_minor(node, "total_amount", currency),
        currency=currency,
        merchant_id=None,
        channel_txn_id=str(node["trade_no"]) if status in PAID_STATUSES else None,
        **_read(cross_border.payer_facts, node),
        **_read(cross_border.settle_facts, node),
    )


def _major(amount: int, currency: str) -> str:
    try:
        return minor_to_major(amount, currency)
    except (AmountFormatError, TypeError):
        raise ChannelRejected(
            f"alipay: amount {amount} out of range", code="invalid_amount"
        ) from None


def _minor(node: Mapping[str, Any], field: str, currency: str) -> int:
    try:
        return major_to_minor(str(node[field]), currency)
    except (AmountFormatError, KeyError):
        raise ChannelUnavailable(
            f"alipay: {field} is not an exact {currency} amount", code="invalid_response"
        ) from None


def _read(
    facts: Callable[[Mapping[str, Any]], dict[str, Any]], node: Mapping[str, Any]
) -> dict[str, Any]:
    """Cross-border facts of an answer; one we cannot read is the gateway's fault."""
    try:
        return facts(node)
    except AmountFormatError as exc:
        raise ChannelUnavailable(f"alipay: {exc}", code="invalid_response") from None


def _refund_facts(node: Mapping[str, Any], currency: str) -> dict[str, Any]:
    """The CNY a cross-border refund gave back, at Alipay's rate of the refund."""
    if currency == CURRENCY:
        return {}
    return _read(cross_border.payer_facts, {**node, "trans_currency": currency})


def _check_currency(currency: str) -> None:
    if not supports_currency(ChannelName.ALIPAY, currency):
        raise ChannelRejected(
            f"alipay takes CNY and its cross-border currencies, not {currency}",
            code="currency_not_supported",
        )


def _check_id(value: str, field: str) -> None:
    if not 0 < len(value) <= gateway.MAX_ID_LENGTH:
        raise ChannelRejected(f"alipay: {field} longer than 64", code="invalid_id")
