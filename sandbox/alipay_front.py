"""Alipay's open-platform gateway, simulated at `/alipay/gateway.do`.

Requests are checked as Alipay checks them: our app id, an RSA2 signature by
the app's key (uploaded to "Alipay" as `SandboxKeys.alipay_app_public_key`),
a known `method`, a readable `biz_content`. Answers are always HTTP 200 with
`{"<method>_response": {...}, "sign": ...}` signed by "Alipay's" key; errors
use Alipay's codes (see `channels.alipay.protocol`). Calls come by POST (a form
body, common parameters possibly in the query string) or by GET (everything in
the query string), as Alipay's gateway takes them; a GET with a signed
`alipay.trade.page.pay` takes the buyer to the cashier page. An `out_trade_no`
that is not 1-64 letters, digits and `_` is refused at creation, as Alipay
documents it.

Cross-border trades: `trans_currency` (the price currency, in which `total_amount`
is) must be one Alipay takes (`channels.base.accepted_currencies`), else 40004
ACQ.CURRENCY_NOT_SUPPORT, as must `settle_currency`, which the sandbox settles in only
when it is the price currency. Once paid, queries and notifications report the
settlement (`settle_currency`, `settle_amount`, `settle_trans_rate` 1) and the buyer's
CNY (`pay_currency`, `pay_amount`, `trans_pay_rate`, `buyer_pay_amount`) at the
sandbox wallets' own rate (`sandbox.channel_fx`). A refund is in the price currency
(`refund_currency`, which must be the trade's); its answers add the CNY given back at
the rate of the refund's moment, under the trade's names.

The channel-neutral work (payments, refunds, injected faults) is the
sandbox service's; this module only speaks Alipay.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from channels.alipay import protocol as gateway
from channels.alipay.amounts import AmountFormatError, major_to_minor, minor_to_major
from channels.alipay.signing import verify_request
from channels.base import PAYER_CURRENCY, ChannelName, supports_currency
from sandbox import alipay_bills
from sandbox.alipay_notify import AlipayNotifications
from sandbox.deps import ServiceDep
from sandbox.errors import SandboxError
from sandbox.key_cache import private_key, public_key
from sandbox.pages import result_page
from sandbox.protocol import Payment, PaymentCreate, Refund, RefundCreate
from sandbox.service import SandboxService
from settings import Settings

router = APIRouter(prefix="/alipay", tags=["alipay"])
ALIPAY = ChannelName.ALIPAY

Params = Mapping[str, str]
Biz = dict[str, Any]
Handler = Callable[[SandboxService, Params, Biz], Awaitable[dict[str, Any]]]

# The sandbox core's refusals, as Alipay words them.
_SUB_CODES = {
    "payment_not_found": "ACQ.TRADE_NOT_EXIST",
    "out_trade_no_conflict": "ACQ.CONTEXT_INCONSISTENT",
    "refund_id_conflict": "ACQ.DISCORDANT_REPEAT_REQUEST",
    "refund_exceeds_payment": "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
    "payment_not_paid": "ACQ.TRADE_STATUS_ERROR",
    "currency_mismatch": "ACQ.INVALID_PARAMETER",
}
_TRADE_STATUS = {
    "pending": "WAIT_BUYER_PAY",
    "paid": "TRADE_SUCCESS",
    "declined": "TRADE_CLOSED",
    "closed": "TRADE_CLOSED",
}


class AlipayError(Exception):
    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str = "") -> None:
        super().__init__(sub_code)
        self.node = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg or sub_code}


def _invalid(sub_code: str, sub_msg: str = "") -> AlipayError:
    return AlipayError("40002", "Invalid Arguments", sub_code, sub_msg)


def _refused(sub_code: str, sub_msg: str = "") -> AlipayError:
    return AlipayError("40004", "Business Failed", sub_code, sub_msg)


def notifications(settings: Settings) -> AlipayNotifications:
    assert settings.sandbox_keys is not None
    key = private_key(settings.sandbox_keys.alipay_private_key.get_secret_value())
    return AlipayNotifications(
        app_id=settings.alipay.app_id, seller_id=settings.alipay.seller_id, key=key
    )


@router.post("/gateway.do")
async def call_gateway(request: Request, service: ServiceDep) -> Response:
    params = await _params(request)
    method = params.get("method", "")
    try:
        biz = _authenticated(request, params)
        handler = _HANDLERS.get(method)
        if method == alipay_bills.METHOD:  # the day's bills, not a trade: its own desk
            node = await alipay_bills.download_url(request, biz)
        elif handler is None:
            raise _invalid("isv.invalid-method", f"no method {method!r}")
        else:
            node = {
                "code": gateway.SUCCESS,
                "msg": "Success",
                **await _run(handler, service, params, biz),
            }
    except AlipayError as error:
        node = error.node
    return _answer(request, method or "error", node)


@router.get("/gateway.do")
async def call_gateway_by_get(request: Request, service: ServiceDep) -> Response:
    """Alipay's gateway takes every call by GET too, all in the query string (as
    python-alipay-sdk sends them): a signed alipay.trade.page.pay is the buyer's
    browser, on to the cashier; any other method is answered as its POST is."""
    if request.query_params.get("method") != gateway.PAGE_PAY:
        return await call_gateway(request, service)
    params = dict(request.query_params)
    try:
        biz = _authenticated(request, params)
        payment = await _run(_create_trade, service, params, biz)
    except AlipayError as error:
        return HTMLResponse(result_page("Alipay refused the request", error.node["sub_code"]), 400)
    return RedirectResponse(f"/alipay/checkout/{payment['payment_id']}", status_code=303)


async def _params(request: Request) -> dict[str, str]:
    """Common parameters may come in the query string, the form body, or both."""
    body = (await request.body()).decode("utf-8", errors="replace")
    pairs = list(request.query_params.multi_items()) + parse_qsl(body, keep_blank_values=True)
    return dict(pairs)


def _authenticated(request: Request, params: Params) -> Biz:
    """Check app id and signature; return the parsed biz_content."""
    settings: Settings = request.app.state.settings
    assert settings.sandbox_keys is not None
    if params.get("app_id") != settings.alipay.app_id:
        raise _invalid("isv.invalid-app-id")
    if params.get("sign_type") != "RSA2":
        raise _invalid("isv.invalid-signature-type")
    app_key = public_key(settings.sandbox_keys.alipay_app_public_key)
    if not verify_request(params, app_key):
        raise _invalid("isv.invalid-signature", "signature does not verify with the app's key")
    try:
        gateway.parse_gateway_timestamp(params.get("timestamp", ""))
        biz = json.loads(params.get("biz_content", ""))
    except ValueError:
        raise _invalid("isv.invalid-parameter", "timestamp or biz_content unreadable") from None
    if not isinstance(biz, dict):
        raise _invalid("isv.invalid-parameter", "biz_content is not an object")
    return biz


async def _run(handler: Handler, service: SandboxService, params: Params, biz: Biz) -> Biz:
    """Run one method, turning the core's refusals into Alipay's codes."""
    try:
        return await handler(service, params, biz)
    except SandboxError as error:
        if error.status_code >= 500:
            raise AlipayError(
                "20000", "Service Currently Unavailable", "isp.unknow-error"
            ) from None
        raise _refused(_SUB_CODES.get(error.code, f"ACQ.{error.code.upper()}")) from None
    except (AmountFormatError, ValidationError, KeyError, TypeError):
        raise _invalid("isv.invalid-parameter", "a biz_content field is missing or bad") from None


def _answer(request: Request, method: str, node: Mapping[str, Any]) -> Response:
    settings: Settings = request.app.state.settings
    assert settings.sandbox_keys is not None
    key = private_key(settings.sandbox_keys.alipay_private_key.get_secret_value())
    body = gateway.signed_response(method, node, key)
    return Response(body, media_type="application/json; charset=utf-8")


# -- the methods -----------------------------------------------------------


async def _create_trade(service: SandboxService, params: Params, biz: Biz) -> Biz:
    out_trade_no = str(biz["out_trade_no"])
    if not gateway.OUT_TRADE_NO.fullmatch(out_trade_no):
        raise _refused("ACQ.INVALID_PARAMETER", "out_trade_no: 1-64 letters, digits and _")
    passback = str(biz.get("passback_params", ""))
    currency = _trade_currency(biz)
    request = PaymentCreate(
        out_trade_no=out_trade_no,
        merchant_id=unquote(passback) or "alipay",
        amount=major_to_minor(str(biz["total_amount"]), currency),
        currency=currency,
        description=str(biz.get("subject", "")),
        notify_url=params.get("notify_url", ""),
    )
    payment = await service.create_payment(ALIPAY, request)
    return {"out_trade_no": payment.out_trade_no, "payment_id": payment.payment_id}


async def _precreate(service: SandboxService, params: Params, biz: Biz) -> Biz:
    created = await _create_trade(service, params, biz)
    payment = await service.get_payment(ALIPAY, created["out_trade_no"])
    return {"out_trade_no": payment.out_trade_no, "qr_code": payment.checkout_url}


async def _query(service: SandboxService, params: Params, biz: Biz) -> Biz:
    payment = await service.get_payment(ALIPAY, biz["out_trade_no"])
    node: Biz = {
        "trade_no": payment.txn_id or payment.payment_id,
        "out_trade_no": payment.out_trade_no,
        "trade_status": _TRADE_STATUS[payment.status],
        "total_amount": minor_to_major(payment.amount, payment.currency),
    }
    if payment.status == "paid":
        node["buyer_pay_amount"] = node["total_amount"]
    return node | trade_cross_border_fields(payment)


async def _close(service: SandboxService, params: Params, biz: Biz) -> Biz:
    result = await service.close_payment(ALIPAY, biz["out_trade_no"])
    if not result.closed:
        raise _refused("ACQ.TRADE_STATUS_ERROR", "only a WAIT_BUYER_PAY trade can be closed")
    payment = result.payment
    return {"trade_no": payment.txn_id or payment.payment_id, "out_trade_no": payment.out_trade_no}


async def _refund(service: SandboxService, params: Params, biz: Biz) -> Biz:
    out_trade_no = biz["out_trade_no"]
    payment = await service.get_payment(ALIPAY, out_trade_no)
    if str(biz.get("refund_currency") or payment.currency) != payment.currency:
        raise _refused("ACQ.CURRENCY_NOT_SUPPORT", "退款币种不支持: the trade's currency only")
    amount = major_to_minor(str(biz["refund_amount"]), payment.currency)
    request_no = biz.get("out_request_no") or ""
    if not request_no:
        if amount != payment.amount:  # Alipay: a partial refund must name itself
            raise _invalid("isv.missing-parameter", "out_request_no is required")
        request_no = out_trade_no
    refund = await service.create_refund(
        ALIPAY,
        RefundCreate(
            refund_id=request_no,
            out_trade_no=out_trade_no,
            amount=amount,
            currency=payment.currency,
            reason=str(biz.get("refund_reason", "")),
        ),
    )
    if refund.status == "failed":
        raise _refused("ACQ.SELLER_BALANCE_NOT_ENOUGH", "the seller's balance is too low")
    return {
        "trade_no": payment.txn_id or payment.payment_id,
        "out_trade_no": out_trade_no,
        "refund_fee": minor_to_major(refund.amount, refund.currency),
        "fund_change": "Y" if refund.status == "succeeded" else "N",
    } | refund_cross_border_fields(refund)


async def _refund_query(service: SandboxService, params: Params, biz: Biz) -> Biz:
    out_trade_no = biz["out_trade_no"]
    request_no = biz.get("out_request_no") or out_trade_no
    try:
        refund = await service.get_refund(ALIPAY, request_no)
    except SandboxError as error:
        if error.status_code != 404:
            raise
        return {"out_trade_no": out_trade_no}  # Alipay's answer for "no such refund"
    if refund.out_trade_no != out_trade_no or refund.status == "failed":
        return {"out_trade_no": out_trade_no}
    return {
        "out_trade_no": out_trade_no,
        "out_request_no": request_no,
        "refund_amount": minor_to_major(refund.amount, refund.currency),
        # Alipay documents REFUND_SUCCESS; the sandbox says when it is still on the way.
        "refund_status": "REFUND_SUCCESS" if refund.status == "succeeded" else "REFUND_PROCESSING",
    } | refund_cross_border_fields(refund)


# -- cross-border ------------------------------------------------------------


def _trade_currency(biz: Biz) -> str:
    """The price currency of a new trade, refused as Alipay refuses one it does not take."""
    currency = str(biz.get("trans_currency") or PAYER_CURRENCY)
    settle_currency = str(biz.get("settle_currency") or currency)
    if not supports_currency(ALIPAY, currency):
        raise _refused("ACQ.CURRENCY_NOT_SUPPORT", f"订单币种不支持: {currency}")
    if settle_currency != currency:
        raise _refused("ACQ.CURRENCY_NOT_SUPPORT", "the sandbox settles in the price currency")
    return currency


def trade_cross_border_fields(payment: Payment) -> Biz:
    """A foreign-priced trade's currencies; once paid, its settlement and the buyer's CNY."""
    if payment.currency == PAYER_CURRENCY:
        return {}
    total = minor_to_major(payment.amount, payment.currency)
    fields: Biz = {"trans_currency": payment.currency, "settle_currency": payment.currency}
    if payment.status == "paid" and payment.payer_amount and payment.payer_currency:
        pay_amount = minor_to_major(payment.payer_amount, payment.payer_currency)
        fields |= {
            "settle_amount": total,
            "settle_trans_rate": "1",
            "pay_currency": payment.payer_currency,
            "pay_amount": pay_amount,
            "trans_pay_rate": payment.channel_rate,
            "buyer_pay_amount": pay_amount,
        }
    return fields


def refund_cross_border_fields(refund: Refund) -> Biz:
    """A foreign-priced refund's currency and the CNY it gave back, at its own rate."""
    if refund.currency == PAYER_CURRENCY or not refund.payer_amount or not refund.payer_currency:
        return {}
    return {
        "refund_currency": refund.currency,
        "pay_currency": refund.payer_currency,
        "pay_amount": minor_to_major(refund.payer_amount, refund.payer_currency),
        "trans_pay_rate": refund.channel_rate,
    }


_HANDLERS: dict[str, Handler] = {
    gateway.PRECREATE: _precreate,
    gateway.PAGE_PAY: _create_trade,
    gateway.QUERY: _query,
    gateway.CLOSE: _close,
    gateway.REFUND: _refund,
    gateway.REFUND_QUERY: _refund_query,
}
