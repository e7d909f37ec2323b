"""The WeChat Pay API v3 adapter: our six flows over WeChat Pay's signed JSON API.

Every request carries `Authorization: WECHATPAY2-SHA256-RSA2048 ...`, signed
with our merchant key over the exact path and body sent. Every answer,
errors and the bare 204 included, must carry a Wechatpay-* signature by a
platform key we trust; one that does not is never trusted, whatever it says.
The keys are `PlatformKeys`: a configured public key (public-key mode), or the
platform certificates, downloaded on first need and again when an unknown
serial signs (rotation), at most once per `certificate_refresh_seconds`.
`_send` is the only place that does I/O and maps outcomes to `channels.errors`:

    transport error, timeout, 408, 429, 5xx  -> ChannelUnavailable (retry may help)
    an answer whose signature fails          -> ChannelUnavailable("response_signature_invalid")
    404                                      -> PaymentNotFound (no such order, or refund)
    any other 4xx                            -> ChannelRejected(code=<WeChat Pay's code>)

Protocol choices: the order id is WeChat Pay's out_trade_no (and so our
channel payment id) and the shop's merchant id rides in `attach`; payments
are native (QR) orders, JSAPI being an extra method; CNY and the cross-border
price currencies are accepted (`channels.base.accepted_currencies`), any other
refused here without calling out. A cross-border order states its price in
`amount.currency` (refunds too); the same paths serve it here (WeChat Pay Global's
live API has them under /v3/global/, with the same amount fields). A refund must
state the payment's total, which a RefundRequest does not carry, so `refund` first
queries the payment (one more signed call, and the total is then the channel's own
figure).
Refunds send no notify_url: WeChat Pay then notifies the merchant's
configured URL, and the sandbox the payment's notify_url.

Keys and the APIv3 key never appear in a message, a repr or a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ValidationError

from channels._sandbox_http import segment, unix_now
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
    supports_currency,
)
from channels.errors import (
    ChannelError,
    ChannelRejected,
    ChannelUnavailable,
    NotificationSignatureError,
)
from channels.http import raise_for_status, read_model, send
from channels.rsa2 import load_private_key, load_public_key
from channels.wechatpay import mapping, wire
from channels.wechatpay.certificates import CertificatesUnreadable, PlatformKey, read_certificates
from channels.wechatpay.crypto import authorization, signer_serial, verify_signed
from channels.wechatpay.notification import read_notification
from channels.wechatpay.platform_keys import PlatformKeys
from settings import WeChatPaySettings

_Model = TypeVar("_Model", bound=BaseModel)
logger = logging.getLogger(__name__)

# WeChat Pay's refusals of a close that still leave the order's state worth reading.
_CLOSE_REFUSED_PAID = "ORDERPAID"
_CLOSE_REFUSED_CLOSED = "ORDER_CLOSED"

ACKNOWLEDGEMENT = Acknowledgement(status_code=204, body="", media_type="application/json")


class WeChatPayAdapter:
    """WeChat Pay for one merchant (`config.mchid`, `config.appid`).

    Methods raise `channels.errors.ChannelError` subclasses. The client is
    injected so that its timeout and connection pool are owned by the caller;
    `clock` (unix seconds) signs requests and judges signature timestamps, and
    `monotonic` paces certificate downloads.
    """

    name = ChannelName.WECHATPAY

    def __init__(
        self,
        config: WeChatPaySettings,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], int] = unix_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._base_url = base_url.rstrip("/")
        self._client = client
        self._clock = clock
        self._merchant_key = load_private_key(config.merchant_private_key.get_secret_value())
        self._platform_keys = PlatformKeys(
            config.certificate_refresh_seconds, _configured(config), monotonic=monotonic
        )
        self._refreshing = asyncio.Lock()  # one download at a time; the others then find it done
        self._api_v3_key = config.apiv3_key.get_secret_value().encode()

    def __repr__(self) -> str:  # keep the keys out of any accidental repr
        return f"WeChatPayAdapter(mchid={self._config.mchid!r}, base_url={self._base_url!r})"

    # -- payments --------------------------------------------------------------

    async def create_payment(self, request: CreatePaymentRequest) -> CreatedPayment:
        """A native (QR) order; creating it again with the same parameters returns it."""
        _require_accepted(request.currency)
        order = mapping.native_order(request, appid=self._config.appid, mchid=self._config.mchid)
        created = await self._call("POST", "/v3/pay/transactions/native", wire.CodeUrl, body=order)
        return CreatedPayment(
            channel_payment_id=request.order_id,
            checkout_url=created.code_url,
            qr_payload=created.code_url,
        )

    async def create_jsapi_payment(self, request: CreatePaymentRequest, openid: str) -> str:
        """A JSAPI order for the buyer `openid`; returns the prepay_id the page pays with."""
        _require_accepted(request.currency)
        order = mapping.jsapi_order(
            request, openid, appid=self._config.appid, mchid=self._config.mchid
        )
        created = await self._call("POST", "/v3/pay/transactions/jsapi", wire.PrepayId, body=order)
        return created.prepay_id

    async def query_payment(self, order_id: str) -> PaymentState:
        path = f"/v3/pay/transactions/out-trade-no/{segment(order_id)}"
        transaction = await self._call(
            "GET", path, wire.Transaction, query={"mchid": self._config.mchid}
        )
        return mapping.payment_state(transaction)

    async def close_payment(self, order_id: str) -> CloseResult:
        """Close, then read the order back: if the buyer paid first it says PAID.

        `closed` is true when the order can no longer be paid (closed, or the
        buyer's attempt failed).
        """
        path = f"/v3/pay/transactions/out-trade-no/{segment(order_id)}/close"
        try:
            await self._send("POST", path, body=wire.CloseOrder(mchid=self._config.mchid))
        except ChannelRejected as refusal:  # PaymentNotFound included: its code is not here
            if refusal.code not in (_CLOSE_REFUSED_PAID, _CLOSE_REFUSED_CLOSED):
                raise
        payment = await self.query_payment(order_id)
        closed = payment.status in (PaymentStatus.CLOSED, PaymentStatus.DECLINED)
        return CloseResult(closed=closed, payment=payment)

    # -- refunds ---------------------------------------------------------------

    async def refund(self, request: RefundRequest) -> RefundState:
        """Refund once per refund_id (WeChat Pay's out_refund_no makes it idempotent)."""
        _require_accepted(request.currency)
        if len(request.refund_id) > wire.OUT_REFUND_NO_MAX:
            raise ChannelRejected(
                f"wechatpay refund: refund_id longer than {wire.OUT_REFUND_NO_MAX} characters",
                code="refund_id_too_long",
            )
        payment = await self.query_payment(request.order_id)
        order = mapping.refund_order(request, total=payment.amount)
        refund = await self._call("POST", "/v3/refund/domestic/refunds", wire.Refund, body=order)
        return mapping.refund_state(refund)

    async def query_refund(self, refund_id: str, order_id: str) -> RefundState:
        """WeChat Pay finds a refund by out_refund_no alone; `order_id` is not needed."""
        path = f"/v3/refund/domestic/refunds/{segment(refund_id)}"
        return mapping.refund_state(await self._call("GET", path, wire.Refund))

    # -- notifications ---------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification | None:
        """Verify the Wechatpay-* signature over the raw body, then open and read it.

        Raises `NotificationSignatureError` for a bad, missing, stale or probe
        signature, `NotificationFormatError` for an unreadable or undecryptable
        body, and `NotificationMismatch` for one about another mchid or appid.
        Returns None for an event type that asks nothing of us.
        """
        now = self._clock()
        verify_signed(headers, body, self._platform_keys.trusted(now), now=now)
        return read_notification(
            body,
            api_v3_key=self._api_v3_key,
            mchid=self._config.mchid,
            appid=self._config.appid,
        )

    async def learn_signer(self, headers: Mapping[str, str]) -> None:
        """Before `parse_notification`: fetch the platform certificates if the
        notification names a serial we do not know (a rotation), when a download is due.

        Never raises: if WeChat Pay cannot be reached the notification is refused as
        unverifiable, and WeChat Pay sends it again.
        """
        try:
            await self._learn_serial(signer_serial(headers))
        except ChannelError as exc:
            logger.warning("wechatpay platform certificates not refreshed: %s", exc.message)

    def acknowledgement(self) -> Acknowledgement:
        return ACKNOWLEDGEMENT

    def rejection(self, status_code: int, error: Mapping[str, object]) -> Acknowledgement:
        """WeChat Pay reads any answer but 200/204 as "not taken"; it wants code and message."""
        detail = error.get("error")
        message = detail.get("message", "") if isinstance(detail, Mapping) else ""
        body = {"code": "FAIL", "message": message, **error}
        return Acknowledgement(
            status_code=status_code,
            body=json.dumps(body, ensure_ascii=False),
            media_type="application/json",
        )

    # -- the one I/O path ------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        response_model: type[_Model],
        *,
        query: Mapping[str, str] | None = None,
        body: BaseModel | None = None,
    ) -> _Model:
        """Send one signed request and parse the verified answer."""
        response = await self._send(method, path, query=query, body=body)
        return read_model(f"wechatpay {method} {path}", response_model, response)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: BaseModel | None = None,
    ) -> httpx.Response:
        """Send one signed request; return the answer once verified and a success."""
        what = f"wechatpay {method} {path}"
        response = await self._request(what, method, path, query=query, body=body)
        await self._learn_serial(signer_serial(response.headers))
        self._verify(what, response, self._platform_keys.trusted(self._clock()))
        if response.status_code >= 400:
            raise_for_status(what, response.status_code, _error_code(response))
        return response

    async def _request(
        self,
        what: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: BaseModel | None = None,
    ) -> httpx.Response:
        url = httpx.URL(self._base_url + path, params=query)
        text = "" if body is None else _json(body)
        headers = {
            "Authorization": self._authorization(method, url, text),
            "Accept": "application/json",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        content = text.encode() if body is not None else None
        return await send(self._client, what, method, url, content=content, headers=headers)

    # -- platform certificates -------------------------------------------------

    async def _learn_serial(self, serial: str) -> None:
        """Download the platform certificates if `serial` is new to us and a download is due."""
        if not self._platform_keys.downloads or self._platform_keys.knows(serial, self._clock()):
            return
        async with self._refreshing:
            if self._platform_keys.may_refresh(serial, self._clock()):
                await self._download_certificates()

    async def _download_certificates(self) -> None:
        """GET /v3/certificates: open each with the APIv3 key, check the answer's own
        signature by one of them (or one we already trust), and trust exactly those."""
        what = "wechatpay GET /v3/certificates"
        response = await self._request(what, "GET", "/v3/certificates")
        if response.status_code >= 400:
            raise ChannelUnavailable(
                f"{what}: HTTP {response.status_code}", code="certificates_unavailable"
            )
        try:
            downloaded = read_certificates(response.content, self._api_v3_key)
        except CertificatesUnreadable as exc:
            raise ChannelUnavailable(f"{what}: {exc}", code="certificates_unreadable") from None
        now = self._clock()
        listed = {k.serial: k.public_key for k in downloaded.values() if k.valid_at(now)}
        self._verify(what, response, self._platform_keys.trusted(now) | listed)
        self._platform_keys.replace(downloaded)
        logger.info("wechatpay platform certificates: %s", ", ".join(sorted(downloaded)))

    def _authorization(self, method: str, url: httpx.URL, body: str) -> str:
        # Signed over the path exactly as sent, so any base path (the sandbox's
        # /wechatpay, a proxy's prefix) is covered as well as the live root.
        return authorization(
            mchid=self._config.mchid,
            serial_no=self._config.merchant_serial,
            key=self._merchant_key,
            method=method,
            path=url.raw_path.decode("ascii"),
            body=body,
            timestamp=self._clock(),
            nonce=secrets.token_hex(16).upper(),
        )

    def _verify(
        self, what: str, response: httpx.Response, trusted: Mapping[str, rsa.RSAPublicKey]
    ) -> None:
        try:
            verify_signed(response.headers, response.content, trusted, self._clock())
        except NotificationSignatureError as exc:
            raise ChannelUnavailable(
                f"{what}: HTTP {response.status_code} answer not signed by WeChat Pay "
                f"({exc.message})",
                code="response_signature_invalid",
            ) from None


def _configured(config: WeChatPaySettings) -> PlatformKey | None:
    """Public-key mode's one key, or None in certificate mode."""
    if not config.public_key_id:
        return None
    return PlatformKey(serial=config.public_key_id, public_key=load_public_key(config.public_key))


def _require_accepted(currency: str) -> None:
    if not supports_currency(ChannelName.WECHATPAY, currency):
        raise ChannelRejected(
            f"wechatpay accepts {wire.CURRENCY} and its cross-border currencies, not {currency}",
            code="currency_not_supported",
        )


def _json(body: BaseModel) -> str:
    """The exact text that is both signed and sent."""
    return json.dumps(
        body.model_dump(mode="json", exclude_none=True), ensure_ascii=False, separators=(",", ":")
    )


def _error_code(response: httpx.Response) -> str:
    try:
        return wire.ErrorBody.model_validate_json(response.content).code
    except ValidationError:
        return f"http_{response.status_code}"
