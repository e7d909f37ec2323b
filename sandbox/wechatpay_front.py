"""WeChat Pay API v3, simulated at /wechatpay over the sandbox core.

    POST /wechatpay/v3/pay/transactions/native                     -> {"code_url"}
    POST /wechatpay/v3/pay/transactions/jsapi                      -> {"prepay_id"}
    GET  /wechatpay/v3/pay/transactions/out-trade-no/{no}?mchid=   -> the transaction
    POST /wechatpay/v3/pay/transactions/out-trade-no/{no}/close    -> 204, or 400 ORDERPAID
    POST /wechatpay/v3/refund/domestic/refunds                     -> the refund
    GET  /wechatpay/v3/refund/domestic/refunds/{out_refund_no}     -> the refund
    GET  /wechatpay/v3/certificates       -> the platform certificates (`wechatpay_keyring`),
                                             or 404 NOT_FOUND in public-key mode

Every request must carry the merchant's Authorization signature (else 401
SIGN_ERROR, `wechatpay_auth.verify_request`) over the raw bytes received;
every answer, errors and the 204 included, is signed with the current platform key.
Errors are `{"code", "message"}`: a malformed body 400 PARAM_ERROR, another
mchid 400 MCH_NOT_EXISTS, the core's errors as `wechatpay_views.wechat_error`
maps them (its injected faults: 500 SYSTEM_ERROR).

Cross-border orders state their price currency in `amount.currency`; one WeChat
Pay does not take (`channels.base.accepted_currencies`) is 400 PARAM_ERROR, as is a
refund whose `amount.currency` is not its order's.

Sandbox rules beyond WeChat Pay's: an order must carry `attach` (the core
records which shop a payment is for); a refund's `amount.total` must equal
the order's (WeChat Pay checks it too); a refund's `notify_url` is accepted
but its notification goes to the order's notify_url, as the core sends it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ValidationError

from channels.base import ChannelName, supports_currency
from channels.wechatpay import wire
from sandbox import wechatpay_views as views
from sandbox.deps import ServiceDep
from sandbox.errors import SandboxError
from sandbox.key_cache import public_key
from sandbox.notifier import NotifyProtocol
from sandbox.protocol import Payment, PaymentCreate, RefundCreate
from sandbox.service import SandboxService
from sandbox.wechatpay_auth import (
    RequestSignatureError,
    signed_headers,
    verify_request,
)
from sandbox.wechatpay_keyring import keyring_for
from sandbox.wechatpay_notify import WeChatPayNotifications
from settings import Settings

router = APIRouter(prefix="/wechatpay", tags=["wechatpay"])

_Model = TypeVar("_Model", bound=BaseModel)
_WECHATPAY = ChannelName.WECHATPAY
Action = Callable[[bytes], Awaitable[BaseModel | None]]


def notifications(settings: Settings) -> NotifyProtocol:
    return WeChatPayNotifications(settings)


class WeChatError(Exception):
    """An answer in WeChat Pay's error shape."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


# -- the API -------------------------------------------------------------------


@router.post("/v3/pay/transactions/native")
async def create_native_order(request: Request, service: ServiceDep) -> Response:
    async def act(raw: bytes) -> wire.CodeUrl:
        payment = await _create(service, request, _parse(wire.NativeOrder, raw))
        return wire.CodeUrl(code_url=payment.qr_payload or payment.checkout_url)

    return await _exchange(request, act)


@router.post("/v3/pay/transactions/jsapi")
async def create_jsapi_order(request: Request, service: ServiceDep) -> Response:
    async def act(raw: bytes) -> wire.PrepayId:
        payment = await _create(service, request, _parse(wire.JsapiOrder, raw))
        return wire.PrepayId(prepay_id=views.derived_id("wx", payment.payment_id))

    return await _exchange(request, act)


@router.get("/v3/pay/transactions/out-trade-no/{out_trade_no}")
async def query_order(out_trade_no: str, request: Request, service: ServiceDep) -> Response:
    async def act(_: bytes) -> wire.Transaction:
        settings = _settings(request)
        _check_mchid(request, request.query_params.get("mchid", ""))
        payment = await service.get_payment(_WECHATPAY, out_trade_no)
        return views.transaction(
            payment, appid=settings.wechatpay.appid, mchid=settings.wechatpay.mchid, paid_at=None
        )

    return await _exchange(request, act)


@router.post("/v3/pay/transactions/out-trade-no/{out_trade_no}/close")
async def close_order(out_trade_no: str, request: Request, service: ServiceDep) -> Response:
    async def act(raw: bytes) -> None:
        _check_mchid(request, _parse(wire.CloseOrder, raw).mchid)
        result = await service.close_payment(_WECHATPAY, out_trade_no)
        if not result.closed:
            raise WeChatError(400, "ORDERPAID", "订单已支付")

    return await _exchange(request, act)


@router.post("/v3/refund/domestic/refunds")
async def create_refund(request: Request, service: ServiceDep) -> Response:
    async def act(raw: bytes) -> wire.Refund:
        order = _parse(wire.RefundOrder, raw)
        payment = await _payment(service, order.out_trade_no)
        if order.amount.total != payment.amount:
            raise WeChatError(400, "PARAM_ERROR", "amount.total differs from the order's total")
        refund = await service.create_refund(
            _WECHATPAY,
            _core(
                RefundCreate,
                refund_id=order.out_refund_no,
                out_trade_no=order.out_trade_no,
                amount=order.amount.refund,
                currency=order.amount.currency,
                reason=order.reason or "",
            ),
        )
        return views.refund(refund, payment)

    return await _exchange(request, act)


@router.get("/v3/refund/domestic/refunds/{out_refund_no}")
async def query_refund(out_refund_no: str, request: Request, service: ServiceDep) -> Response:
    async def act(_: bytes) -> wire.Refund:
        refund = await service.get_refund(_WECHATPAY, out_refund_no)
        return views.refund(refund, await _payment(service, refund.out_trade_no))

    return await _exchange(request, act)


@router.get("/v3/certificates")
async def list_certificates(request: Request) -> Response:
    async def act(_: bytes) -> wire.CertificateList:
        settings = _settings(request)
        keyring = keyring_for(settings)
        if keyring.public_key_id:
            raise WeChatError(404, "NOT_FOUND", "无可用的平台证书: 请使用微信支付公钥")
        api_v3_key = settings.wechatpay.apiv3_key.get_secret_value().encode()
        return views.certificate_list(keyring.listed(datetime.now(UTC)), api_v3_key)

    return await _exchange(request, act)


# -- one exchange: authenticate, act, answer signed ----------------------------


async def _exchange(request: Request, act: Action) -> Response:
    """Run `act` on the raw body of an authenticated request; sign whatever comes back."""
    raw = await request.body()
    try:
        _authenticate(request, raw)
        result = await act(raw)
    except RequestSignatureError as exc:
        return _signed(request, 401, _error_body("SIGN_ERROR", f"签名错误: {exc}"))
    except WeChatError as exc:
        return _signed(request, exc.status_code, _error_body(exc.code, exc.message))
    except SandboxError as exc:
        status_code, code = views.wechat_error(exc)
        return _signed(request, status_code, _error_body(code, exc.message))
    if result is None:
        return _signed(request, 204, b"")
    return _signed(request, 200, _json(result))


def _authenticate(request: Request, raw: bytes) -> None:
    settings = _settings(request)
    assert settings.sandbox_keys is not None  # create_app refuses to start without them
    path = request.scope["raw_path"].decode("latin-1")
    if query := request.scope["query_string"].decode("latin-1"):
        path = f"{path}?{query}"
    verify_request(
        request.headers.get("authorization", ""),
        method=request.method,
        path=path,
        body=raw,
        mchid=settings.wechatpay.mchid,
        serial_no=settings.wechatpay.merchant_serial,
        merchant_key=public_key(settings.sandbox_keys.wechatpay_merchant_public_key),
        now=int(time.time()),
    )


def _signed(request: Request, status_code: int, body: bytes) -> Response:
    serial_no, platform_key = keyring_for(_settings(request)).signer()
    headers = signed_headers(
        body, serial_no=serial_no, platform_key=platform_key, now=int(time.time())
    )
    media_type = "application/json" if body else None
    return Response(body, status_code=status_code, headers=headers, media_type=media_type)


# -- helpers -------------------------------------------------------------------


async def _create(service: SandboxService, request: Request, order: wire.NativeOrder) -> Payment:
    settings = _settings(request)
    _check_mchid(request, order.mchid)
    if order.appid != settings.wechatpay.appid:
        raise WeChatError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    if not order.attach:
        raise WeChatError(400, "PARAM_ERROR", "the sandbox needs attach: the shop's merchant id")
    if not supports_currency(_WECHATPAY, order.amount.currency):
        raise WeChatError(400, "PARAM_ERROR", f"不支持的币种: {order.amount.currency}")
    create = _core(
        PaymentCreate,
        out_trade_no=order.out_trade_no,
        merchant_id=order.attach,
        amount=order.amount.total,
        currency=order.amount.currency,
        description=order.description,
        notify_url=order.notify_url,
    )
    return await service.create_payment(_WECHATPAY, create)


async def _payment(service: SandboxService, out_trade_no: str) -> Payment:
    """The order as it stands, without spending an injected fault on the look-up."""
    return service.payment_view(await service.store.payment((_WECHATPAY, out_trade_no)))


def _check_mchid(request: Request, mchid: str) -> None:
    if mchid != _settings(request).wechatpay.mchid:
        raise WeChatError(400, "MCH_NOT_EXISTS", "商户号不存在")


def _parse(model: type[_Model], raw: bytes) -> _Model:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise WeChatError(400, "PARAM_ERROR", f"参数错误: {fields or 'body'}") from None


def _core(model: type[_Model], **fields: object) -> _Model:
    """A core request; WeChat Pay's rules are stricter, but the core's must hold too."""
    try:
        return model.model_validate(fields)
    except ValidationError:
        raise WeChatError(400, "PARAM_ERROR", "参数错误") from None


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _error_body(code: str, message: str) -> bytes:
    return _json(wire.ErrorBody(code=code, message=message))


def _json(model: BaseModel) -> bytes:
    value = model.model_dump(mode="json", exclude_none=True)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
