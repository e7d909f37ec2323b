"""WeChat Pay API v3, both sides: our adapter against the sandbox's WeChat Pay, over real HTTP.

Each test tells what our platform (through `WeChatPayAdapter`), the buyer or
WeChat Pay (through the control API) does, and what must then be true. Every
request is signed with the merchant key and every answer and notification
with the platform key, so each test here also proves both signatures. The
tampering tests start from a notification the sandbox really sent.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels import rsa2
from channels._sandbox_http import unix_now
from channels.base import (
    CreatePaymentRequest,
    Notification,
    NotificationKind,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)
from channels.errors import (
    ChannelRejected,
    ChannelUnavailable,
    NotificationFormatError,
    NotificationMismatch,
    NotificationSignatureError,
    PaymentNotFound,
)
from channels.wechatpay.adapter import ACKNOWLEDGEMENT, WeChatPayAdapter
from channels.wechatpay.crypto import (
    authorization,
    decrypt_resource,
    encrypt_resource,
    response_message,
    verify_signed,
)
from sandbox.protocol import Event, EventData
from sandbox.wechatpay_auth import RequestSignatureError, verify_request
from sandbox.wechatpay_front import notifications
from sandbox.wechatpay_keyring import first_serial
from settings import Settings, WeChatPaySettings
from tests.channels.conftest import (
    STARTUP_TIMEOUT_S,
    Control,
    _new_sandbox,
    _start_sandbox,
    _stop_sandbox,
    free_port,
)
from tests.support import http_client, wait_for

if TYPE_CHECKING:
    from tests.channels.conftest import Inbox, ReceivedRequest, Receiver, RunningSandbox

# WeChat Pay's documented notify retries, in seconds after the previous attempt: 15s, 15s,
# 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h.
WECHAT_SCHEDULE = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
)  # fmt: skip
MERCHANT = "shop_tea_house"
AMOUNT = 8_888
OTHER_KEY = rsa2.new_private_key()  # neither the merchant's nor the platform's
OTHER_KEY_TEXT = rsa2.private_key_text(OTHER_KEY)


def platform_serial(settings: Settings) -> str:
    """The serial of the sandbox's platform certificate (never rotated in this module)."""
    assert settings.sandbox_keys is not None
    text = settings.sandbox_keys.wechatpay_platform_private_key.get_secret_value()
    return first_serial(rsa2.load_private_key(text))


def wechatpay_adapter(
    running: RunningSandbox,
    client: httpx.AsyncClient,
    *,
    clock: Callable[[], int] = unix_now,
    **config: str,
) -> WeChatPayAdapter:
    """The adapter as the registry builds it, with some of its settings changed."""
    return configured_adapter(running, client, config, clock=clock)


def configured_adapter(
    running: RunningSandbox,
    client: httpx.AsyncClient,
    config: dict[str, str],
    *,
    clock: Callable[[], int] = unix_now,
) -> WeChatPayAdapter:
    settings = WeChatPaySettings.model_validate(running.settings().wechatpay.model_dump() | config)
    return WeChatPayAdapter(settings, f"{running.base_url}/wechatpay", client, clock=clock)


@pytest.fixture
def settings(sandbox: RunningSandbox) -> Settings:
    return sandbox.settings()


def pinned(settings: Settings) -> dict[str, str]:
    """Settings that trust the sandbox's platform key as a configured key, without downloads."""
    assert settings.sandbox_keys is not None
    text = settings.sandbox_keys.wechatpay_platform_private_key.get_secret_value()
    public_key = rsa2.public_key_text(rsa2.load_private_key(text).public_key())
    return {"public_key_id": platform_serial(settings), "public_key": public_key}


@pytest_asyncio.fixture
async def wechatpay(
    sandbox: RunningSandbox, settings: Settings, client: httpx.AsyncClient
) -> WeChatPayAdapter:
    """Our adapter, having downloaded the platform certificates as the API does on the
    first notification (the tests below hand it notifications directly)."""
    adapter = wechatpay_adapter(sandbox, client)
    await adapter.learn_signer({"Wechatpay-Serial": platform_serial(settings)})
    return adapter


def payment_request(
    order_id: str, notify_url: str, *, amount: int = AMOUNT, currency: str = "CNY"
) -> CreatePaymentRequest:
    return CreatePaymentRequest(
        order_id=order_id,
        merchant_id=MERCHANT,
        amount=amount,
        currency=currency,
        description="Longjing tea, 250 g",
        notify_url=notify_url,
    )


def refund_request(order_id: str, amount: int = 3_000, currency: str = "CNY") -> RefundRequest:
    return RefundRequest(
        refund_id=f"rf_{secrets.token_hex(8)}",
        order_id=order_id,
        amount=amount,
        currency=currency,
        reason="one tin arrived dented",
    )


async def notices(inbox: Inbox, count: int) -> list[ReceivedRequest]:
    return await wait_for(inbox.received, lambda got: len(got) >= count, f"{count} notice(s)")


async def paid_order(
    wechatpay: WeChatPayAdapter, control: Control, order_id: str, inbox: Inbox
) -> Notification:
    """Create an order, let the buyer pay it, and read WeChat Pay's notification."""
    await wechatpay.create_payment(payment_request(order_id, inbox.url))
    await control.pay(order_id)
    (notice,) = await notices(inbox, 1)
    notification = wechatpay.parse_notification(notice.headers, notice.body)
    assert notification is not None
    return notification


# -- creating and querying orders ------------------------------------------------


async def test_a_native_order_is_pending_and_its_code_url_is_the_cashier(
    wechatpay: WeChatPayAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await wechatpay.create_payment(payment_request(order_id, inbox.url))
    again = await wechatpay.create_payment(payment_request(order_id, inbox.url))

    assert again == created
    assert created.channel_payment_id == order_id
    assert created.checkout_url == created.qr_payload
    assert created.checkout_url.startswith(f"{sandbox.base_url}/wechatpay/checkout/")
    assert (await client.get(created.checkout_url)).status_code == 200
    state = await wechatpay.query_payment(order_id)
    assert (state.status, state.amount, state.currency) == (PaymentStatus.PENDING, AMOUNT, "CNY")
    assert (state.order_id, state.channel_payment_id) == (order_id, order_id)
    assert (state.merchant_id, state.channel_txn_id) == (MERCHANT, None)


async def test_a_jsapi_order_returns_a_prepay_id(
    wechatpay: WeChatPayAdapter, order_id: str, inbox: Inbox
) -> None:
    request = payment_request(order_id, inbox.url)

    prepay_id = await wechatpay.create_jsapi_payment(request, openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")

    assert prepay_id.startswith("wx")
    assert await wechatpay.create_jsapi_payment(request, openid="oUpF8uMuAJO") == prepay_id
    assert (await wechatpay.query_payment(order_id)).status is PaymentStatus.PENDING


async def test_a_currency_wechat_does_not_take_is_refused_without_calling_out(
    sandbox: RunningSandbox, client: httpx.AsyncClient, order_id: str, inbox: Inbox
) -> None:
    # Nothing listens on port 1: a call out would be ChannelUnavailable, not a refusal.
    nowhere = WeChatPayAdapter(sandbox.settings().wechatpay, "http://127.0.0.1:1", client)
    refusals = [
        nowhere.create_payment(payment_request(order_id, inbox.url, currency="KWD")),
        nowhere.create_jsapi_payment(payment_request(order_id, inbox.url, currency="KWD"), "o1"),
        nowhere.refund(refund_request(order_id, currency="KWD")),
    ]
    for refusal in refusals:
        with pytest.raises(ChannelRejected) as error:
            await refusal
        assert error.value.code == "currency_not_supported"


async def test_a_refund_id_longer_than_wechat_allows_is_refused_without_calling_out(
    sandbox: RunningSandbox, client: httpx.AsyncClient, order_id: str
) -> None:
    nowhere = WeChatPayAdapter(sandbox.settings().wechatpay, "http://127.0.0.1:1", client)
    request = refund_request(order_id).model_copy(update={"refund_id": "r" * 65})

    with pytest.raises(ChannelRejected) as error:
        await nowhere.refund(request)
    assert error.value.code == "refund_id_too_long"


async def test_the_sandbox_checks_orders_as_wechat_pay_does(
    wechatpay: WeChatPayAdapter, order_id: str, inbox: Inbox
) -> None:
    with pytest.raises(ChannelRejected) as error:
        await wechatpay.create_payment(payment_request(order_id, inbox.url, amount=0))
    assert (error.value.code, error.value.retryable) == ("PARAM_ERROR", False)

    await wechatpay.create_payment(payment_request(order_id, inbox.url))
    with pytest.raises(ChannelRejected) as error:
        await wechatpay.create_payment(payment_request(order_id, inbox.url, amount=AMOUNT + 1))
    assert error.value.code == "OUT_TRADE_NO_USED"


async def test_an_unknown_order_or_refund_is_not_found(
    wechatpay: WeChatPayAdapter, order_id: str
) -> None:
    for call in (
        wechatpay.query_payment(order_id),
        wechatpay.close_payment(order_id),
        wechatpay.refund(refund_request(order_id)),
    ):
        with pytest.raises(PaymentNotFound) as error:
            await call
        assert (error.value.code, error.value.retryable) == ("ORDER_NOT_EXIST", False)

    with pytest.raises(PaymentNotFound) as error:
        await wechatpay.query_refund(f"rf_{secrets.token_hex(8)}", order_id)
    assert error.value.code == "RESOURCE_NOT_EXISTS"


async def test_an_injected_fault_is_a_retryable_system_error_then_the_call_succeeds(
    wechatpay: WeChatPayAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await control.fail_api(order_id, times=1)
    with pytest.raises(ChannelUnavailable) as error:
        await wechatpay.create_payment(payment_request(order_id, inbox.url))
    assert (error.value.code, error.value.retryable) == ("SYSTEM_ERROR", True)

    await wechatpay.create_payment(payment_request(order_id, inbox.url))
    await control.fail_api(order_id, times=1)
    with pytest.raises(ChannelUnavailable):
        await wechatpay.query_payment(order_id)
    assert (await wechatpay.query_payment(order_id)).status is PaymentStatus.PENDING


# -- signatures on the API --------------------------------------------------------


async def test_a_request_signed_with_another_merchant_key_is_refused_for_good(
    sandbox: RunningSandbox,
    settings: Settings,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    impostors = [
        {"merchant_private_key": OTHER_KEY_TEXT},
        {"merchant_serial": "0" * 40},
    ]
    for impostor in impostors:
        # Pinned to the platform key: an impostor cannot download the certificates.
        pinned_impostor = configured_adapter(sandbox, client, impostor | pinned(settings))
        with pytest.raises(ChannelRejected) as error:
            await pinned_impostor.create_payment(payment_request(order_id, inbox.url))
        # The 401 itself is signed by WeChat Pay, so it is believed, and it is final.
        assert (type(error.value), error.value.code) == (ChannelRejected, "SIGN_ERROR")
        assert not error.value.retryable
        assert OTHER_KEY_TEXT not in str(error.value)
        assert OTHER_KEY_TEXT not in repr(pinned_impostor)
        with pytest.raises(ChannelUnavailable) as unverified:
            await configured_adapter(sandbox, client, impostor).query_payment(order_id)
        assert unverified.value.code == "certificates_unavailable"


async def test_an_answer_not_signed_by_the_platform_key_is_never_trusted(
    wechatpay: WeChatPayAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    await wechatpay.create_payment(payment_request(order_id, inbox.url))
    other_platform = rsa2.public_key_text(OTHER_KEY.public_key())
    doubters = [
        # Public-key mode with a key that is not WeChat Pay's: no certificate is fetched.
        wechatpay_adapter(sandbox, client, public_key_id="PUB_KEY_ID_0", public_key=other_platform),
        # Certificate mode with the wrong APIv3 key: no downloaded certificate opens.
        wechatpay_adapter(sandbox, client, apiv3_key=secrets.token_hex(16)),
    ]
    for doubter in doubters:
        for call in (doubter.query_payment(order_id), doubter.query_refund("rf_unknown", order_id)):
            with pytest.raises(ChannelUnavailable) as error:
                await call  # a 200 and a 404 alike: neither is believed
            unverified = ("response_signature_invalid", "certificates_unreadable")
            assert error.value.code in unverified


async def test_a_request_the_adapter_signs_verifies_in_the_sandbox(
    sandbox: RunningSandbox, settings: Settings, order_id: str, inbox: Inbox
) -> None:
    sent: list[httpx.Request] = []

    async def keep(request: httpx.Request) -> None:
        sent.append(request)

    async with http_client(timeout=5, event_hooks={"request": [keep]}) as client:
        adapter = wechatpay_adapter(sandbox, client)
        await adapter.create_payment(payment_request(order_id, inbox.url))
        await adapter.query_payment(order_id)

    assert settings.sandbox_keys is not None
    merchant_key = rsa2.load_public_key(settings.sandbox_keys.wechatpay_merchant_public_key)
    for request in sent:
        verify_request(
            request.headers["authorization"],
            method=request.method,
            path=request.url.raw_path.decode(),
            body=request.content,
            mchid=settings.wechatpay.mchid,
            serial_no=settings.wechatpay.merchant_serial,
            merchant_key=merchant_key,
            now=int(time.time()),
        )
    assert [r.url.path for r in sent] == [
        "/wechatpay/v3/pay/transactions/native",
        "/wechatpay/v3/certificates",  # the first answer names a serial not yet known
        f"/wechatpay/v3/pay/transactions/out-trade-no/{order_id}",
    ]
    assert json.loads(sent[0].content)["attach"] == MERCHANT


KNOWN_KEY = rsa2.new_private_key()


@dataclass
class SignedRequest:
    """One request as the merchant signs it, for the sandbox's check to judge."""

    method: str = "POST"
    path: str = "/wechatpay/v3/pay/transactions/native"
    body: bytes = b'{"amount":{"total":1}}'
    mchid: str = "1900000109"
    serial_no: str = "5157F09EFDC096DE15EBE81A47057A72"
    timestamp: int = 1_700_000_000
    key: Any = field(default_factory=lambda: KNOWN_KEY)

    def header(self) -> str:
        return authorization(
            mchid=self.mchid,
            serial_no=self.serial_no,
            key=self.key,
            method=self.method,
            path=self.path,
            body=self.body.decode(),
            timestamp=self.timestamp,
            nonce="593BEC0C930BF1AFEB40B4A08C8FB242",
        )


def sandbox_check(header: str, **received: Any) -> None:
    """The sandbox's verification, against what `SignedRequest()` signs by default."""
    expected = SignedRequest()
    verify_request(
        header,
        method=received.get("method", expected.method),
        path=received.get("path", expected.path),
        body=received.get("body", expected.body),
        mchid=expected.mchid,
        serial_no=expected.serial_no,
        merchant_key=KNOWN_KEY.public_key(),
        now=received.get("now", expected.timestamp),
    )


def test_the_sandbox_accepts_exactly_what_the_merchant_signed() -> None:
    header = SignedRequest().header()

    sandbox_check(header)
    sandbox_check(header, now=SignedRequest.timestamp + 300)
    sandbox_check(header, now=SignedRequest.timestamp - 300)


@pytest.mark.parametrize(
    ("header", "received"),
    [
        (SignedRequest().header(), {"body": b'{"amount":{"total":2}}'}),
        (SignedRequest().header(), {"path": "/wechatpay/v3/pay/transactions/jsapi"}),
        (SignedRequest().header(), {"method": "PUT"}),
        (SignedRequest().header(), {"now": SignedRequest.timestamp + 301}),
        (SignedRequest().header(), {"now": SignedRequest.timestamp - 301}),
        (SignedRequest().header(), {"body": b"\xff"}),
        (SignedRequest(key=OTHER_KEY).header(), {}),
        (SignedRequest(mchid="1900000110").header(), {}),
        (SignedRequest(serial_no="0" * 32).header(), {}),
        (SignedRequest().header().replace("WECHATPAY2-SHA256-RSA2048", "Bearer"), {}),
        (SignedRequest().header().replace('nonce_str="', 'nonce="'), {}),
        ("", {}),
    ],
    ids=[
        "body",
        "path",
        "method",
        "stale",
        "future",
        "not-utf8",
        "other-key",
        "other-mchid",
        "other-serial",
        "scheme",
        "missing-field",
        "no-header",
    ],
)
def test_the_sandbox_refuses_any_change_to_a_signed_request(
    header: str, received: dict[str, Any]
) -> None:
    with pytest.raises(RequestSignatureError):
        sandbox_check(header, **received)


async def merchant_call(
    settings: Settings, client: httpx.AsyncClient, base_url: str, path: str, body: dict[str, Any]
) -> httpx.Response:
    """A POST signed as our merchant, for what the adapter itself would never send."""
    text = json.dumps(body)
    url = httpx.URL(f"{base_url}/wechatpay{path}")
    header = authorization(
        mchid=settings.wechatpay.mchid,
        serial_no=settings.wechatpay.merchant_serial,
        key=rsa2.load_private_key(settings.wechatpay.merchant_private_key.get_secret_value()),
        method="POST",
        path=url.raw_path.decode(),
        body=text,
        timestamp=int(time.time()),
        nonce=secrets.token_hex(16),
    )
    headers = {"Authorization": header, "Content-Type": "application/json"}
    return await client.post(url, content=text.encode(), headers=headers)


async def test_the_sandbox_refuses_a_refund_that_misstates_the_order_total(
    wechatpay: WeChatPayAdapter,
    sandbox: RunningSandbox,
    settings: Settings,
    client: httpx.AsyncClient,
    control: Control,
    order_id: str,
    inbox: Inbox,
) -> None:
    await paid_order(wechatpay, control, order_id, inbox)
    refund = {
        "out_trade_no": order_id,
        "out_refund_no": f"rf_{secrets.token_hex(8)}",
        "amount": {"refund": 100, "total": AMOUNT + 1, "currency": "CNY"},
    }

    response = await merchant_call(
        settings, client, sandbox.base_url, "/v3/refund/domestic/refunds", refund
    )

    assert (response.status_code, response.json()["code"]) == (400, "PARAM_ERROR")
    assert settings.sandbox_keys is not None
    platform_key = rsa2.load_private_key(
        settings.sandbox_keys.wechatpay_platform_private_key.get_secret_value()
    )
    platform_keys = {platform_serial(settings): platform_key.public_key()}
    verify_signed(response.headers, response.content, platform_keys, int(time.time()))


# -- paying ------------------------------------------------------------------------


async def test_a_paid_order_is_notified_signed_and_encrypted(
    wechatpay: WeChatPayAdapter, settings: Settings, control: Control, order_id: str, inbox: Inbox
) -> None:
    notification = await paid_order(wechatpay, control, order_id, inbox)

    state = await wechatpay.query_payment(order_id)
    assert state.status is PaymentStatus.PAID and state.channel_txn_id
    assert notification.paid_at is not None  # success_time, when the buyer paid
    assert abs(time.time() - notification.paid_at.timestamp()) < 60
    assert notification == Notification(
        notification_id=notification.notification_id,
        kind=NotificationKind.PAYMENT_SUCCEEDED,
        order_id=order_id,
        channel_payment_id=order_id,
        channel_txn_id=state.channel_txn_id,
        amount=AMOUNT,
        currency="CNY",
        merchant_id=MERCHANT,
        paid_at=notification.paid_at,
    )
    (notice,) = await inbox.received()
    envelope = json.loads(notice.body)
    assert envelope["event_type"] == "TRANSACTION.SUCCESS"
    assert envelope["resource"]["algorithm"] == "AEAD_AES_256_GCM"
    assert envelope["id"] == notification.notification_id
    assert str(AMOUNT) not in notice.body.decode()  # the resource is sealed
    assert notice.headers["wechatpay-serial"] == platform_serial(settings)
    # Logged once our answer reached the sandbox, a moment after the receiver had it.
    (delivery,) = await wait_for(
        lambda: control.deliveries(order_id), lambda got: len(got) >= 1, "the attempt logged"
    )
    assert (delivery["type"], delivery["accepted"]) == ("payment.succeeded", True)


async def test_answers_and_notifications_name_their_signature_type_as_the_sdks_want(
    wechatpay: WeChatPayAdapter,
    sandbox: RunningSandbox,
    settings: Settings,
    client: httpx.AsyncClient,
    control: Control,
    order_id: str,
    inbox: Inbox,
) -> None:
    await paid_order(wechatpay, control, order_id, inbox)  # the adapter verified it
    (notice,) = await inbox.received()
    refused = await merchant_call(
        settings, client, sandbox.base_url, "/v3/refund/domestic/refunds", {}
    )

    for headers in (notice.headers, refused.headers):
        # wechatpayv3 refuses an answer or notification without exactly this.
        assert headers["wechatpay-signature-type"] == "WECHATPAY2-SHA256-RSA2048"
    without = {k: v for k, v in notice.headers.items() if k != "wechatpay-signature-type"}
    with pytest.raises(NotificationSignatureError):
        wechatpay.parse_notification(without, notice.body)


async def test_a_declined_payment_is_not_notified_and_queries_as_declined(
    wechatpay: WeChatPayAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await wechatpay.create_payment(payment_request(order_id, inbox.url))

    await control.decline(order_id)

    assert (await wechatpay.query_payment(order_id)).status is PaymentStatus.DECLINED
    # A late payment is notified; it arrives alone, so nothing went out for the decline.
    await control.pay(order_id, force=True)
    (notice,) = await notices(inbox, 1)
    assert json.loads(notice.body)["event_type"] == "TRANSACTION.SUCCESS"

    async def delivered() -> list[str]:  # the sandbox records a delivery once it is answered
        return [d["type"] for d in await control.deliveries(order_id)]

    await wait_for(delivered, lambda types: types != [], "the sandbox's record of the delivery")
    assert await delivered() == ["payment.succeeded"]


# -- closing -----------------------------------------------------------------------


async def test_closing_a_pending_order_closes_it(
    wechatpay: WeChatPayAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await wechatpay.create_payment(payment_request(order_id, inbox.url))

    result = await wechatpay.close_payment(order_id)
    again = await wechatpay.close_payment(order_id)

    assert result.closed and again.closed
    assert result.payment.status is again.payment.status is PaymentStatus.CLOSED
    assert (await control.post(f"/payments/{order_id}/pay")).status_code == 409


async def test_closing_after_the_buyer_paid_reports_the_payment(
    wechatpay: WeChatPayAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    notification = await paid_order(wechatpay, control, order_id, inbox)

    result = await wechatpay.close_payment(order_id)

    assert not result.closed
    assert result.payment.status is PaymentStatus.PAID
    assert result.payment.channel_txn_id == notification.channel_txn_id


# -- refunding ---------------------------------------------------------------------


async def test_a_partial_refund_succeeds_is_idempotent_and_is_notified(
    wechatpay: WeChatPayAdapter, settings: Settings, control: Control, order_id: str, inbox: Inbox
) -> None:
    paid = await paid_order(wechatpay, control, order_id, inbox)
    request = refund_request(order_id, amount=3_000)

    refund = await wechatpay.refund(request)

    assert (refund.status, refund.amount, refund.currency) == (RefundStatus.SUCCEEDED, 3_000, "CNY")
    assert (refund.refund_id, refund.order_id) == (request.refund_id, order_id)
    assert (
        await wechatpay.refund(request)
        == refund
        == await wechatpay.query_refund(refund.refund_id, order_id)
    )
    assert (await wechatpay.query_payment(order_id)).status is PaymentStatus.PAID
    notice = (await notices(inbox, 2))[1]
    assert json.loads(notice.body)["event_type"] == "REFUND.SUCCESS"
    assert wechatpay.parse_notification(notice.headers, notice.body) == Notification(
        notification_id=json.loads(notice.body)["id"],
        kind=NotificationKind.REFUND_SUCCEEDED,
        order_id=order_id,
        channel_payment_id=order_id,
        channel_txn_id=paid.channel_txn_id,
        amount=3_000,
        currency="CNY",
        merchant_id=None,
        refund_id=request.refund_id,
    )
    amounts = {"total": AMOUNT, "refund": 3_000, "payer_total": AMOUNT, "payer_refund": 3_000}
    assert opened(settings, notice.body)["amount"] == amounts


async def test_refunds_beyond_the_paid_amount_are_refused(
    wechatpay: WeChatPayAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(wechatpay, control, order_id, inbox)
    await wechatpay.refund(refund_request(order_id, amount=AMOUNT - 1))

    with pytest.raises(ChannelRejected) as error:
        await wechatpay.refund(refund_request(order_id, amount=2))
    assert (error.value.code, error.value.retryable) == ("INVALID_REQUEST", False)


async def test_a_pending_refund_succeeds_when_wechat_pay_completes_it(
    wechatpay: WeChatPayAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(wechatpay, control, order_id, inbox)
    await control.refund_behaviour(order_id, "pending")
    request = refund_request(order_id)

    assert (await wechatpay.refund(request)).status is RefundStatus.PENDING
    assert (
        await wechatpay.query_refund(request.refund_id, order_id)
    ).status is RefundStatus.PENDING
    await control.complete_refund(request.refund_id)

    notice = (await notices(inbox, 2))[1]
    notification = wechatpay.parse_notification(notice.headers, notice.body)
    assert notification is not None
    assert (notification.kind, notification.refund_id, notification.amount) == (
        NotificationKind.REFUND_SUCCEEDED,
        request.refund_id,
        request.amount,
    )
    assert (
        await wechatpay.query_refund(request.refund_id, order_id)
    ).status is RefundStatus.SUCCEEDED


async def test_a_refused_refund_fails_and_says_why(
    wechatpay: WeChatPayAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(wechatpay, control, order_id, inbox)
    await control.refund_behaviour(order_id, "fail")
    request = refund_request(order_id)

    refund = await wechatpay.refund(request)

    assert (refund.status, refund.failure_reason) == (RefundStatus.FAILED, "ABNORMAL")
    assert await wechatpay.query_refund(request.refund_id, order_id) == refund
    notice = (await notices(inbox, 2))[1]
    assert json.loads(notice.body)["event_type"] == "REFUND.ABNORMAL"
    notification = wechatpay.parse_notification(notice.headers, notice.body)
    assert notification is not None
    assert (notification.kind, notification.refund_id) == (
        NotificationKind.REFUND_FAILED,
        request.refund_id,
    )


# -- notifications: what is refused -----------------------------------------------


@pytest_asyncio.fixture
async def captured(
    wechatpay: WeChatPayAdapter, control: Control, order_id: str, inbox: Inbox
) -> ReceivedRequest:
    """A payment notification exactly as the sandbox sent it."""
    await paid_order(wechatpay, control, order_id, inbox)
    (notice,) = await inbox.received()
    return notice


def signed_as_platform(
    settings: Settings, body: bytes, *, timestamp: int | None = None, key: Any = None
) -> dict[str, str]:
    """Wechatpay-* headers over `body`, by the platform key unless another is given."""
    assert settings.sandbox_keys is not None
    platform_key = rsa2.load_private_key(
        settings.sandbox_keys.wechatpay_platform_private_key.get_secret_value()
    )
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    nonce = secrets.token_hex(16)
    signature = rsa2.sign(response_message(stamp, nonce, body.decode()), key or platform_key)
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": platform_serial(settings),
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def opened(settings: Settings, body: bytes) -> dict[str, Any]:
    """A notification's resource, decrypted with the APIv3 key."""
    sealed = json.loads(body)["resource"]
    api_v3_key = settings.wechatpay.apiv3_key.get_secret_value().encode()
    plain = decrypt_resource(
        api_v3_key, sealed["nonce"], sealed["associated_data"], sealed["ciphertext"]
    )
    resource: dict[str, Any] = json.loads(plain)
    return resource


def resealed(settings: Settings, body: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The notification with its resource opened, changed, and sealed again with the APIv3 key."""
    envelope = json.loads(body)
    resource = opened(settings, body)
    change(resource)
    sealed = envelope["resource"]
    sealed["ciphertext"] = encrypt_resource(
        settings.wechatpay.apiv3_key.get_secret_value().encode(),
        sealed["nonce"],
        sealed["associated_data"],
        json.dumps(resource).encode(),
    )
    return json.dumps(envelope).encode()


def stopped_at(unix_seconds: int) -> Callable[[], int]:
    return lambda: unix_seconds


def test_a_captured_notification_verifies_until_its_timestamp_is_out_of_tolerance(
    sandbox: RunningSandbox,
    settings: Settings,
    client: httpx.AsyncClient,
    captured: ReceivedRequest,
) -> None:
    sent_at = int(captured.headers["wechatpay-timestamp"])

    def at(skew: int) -> WeChatPayAdapter:
        clock = stopped_at(sent_at + skew)
        return configured_adapter(sandbox, client, pinned(settings), clock=clock)

    for skew in (-300, 0, 300):
        adapter = at(skew)
        assert adapter.parse_notification(captured.headers, captured.body) is not None
    for skew in (-301, 301, 86_400):  # a notification from the future, or a replay
        adapter = at(skew)
        with pytest.raises(NotificationSignatureError):
            adapter.parse_notification(captured.headers, captured.body)


def _flip_one_byte(body: bytes) -> bytes:
    at = body.index(b'"id":"') + 6
    return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]


def _probe(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "wechatpay-signature": "WECHATPAY/SIGNTEST/" + secrets.token_hex(16)}


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, _flip_one_byte(b)),
        lambda h, b: (h, b + b" "),
        lambda h, b: (_probe(h), b),
        lambda h, b: ({**h, "wechatpay-serial": "0" * 40}, b),
        lambda h, b: ({**h, "wechatpay-nonce": "another-nonce"}, b),
        lambda h, b: ({**h, "wechatpay-signature-type": "WECHATPAY2-SM2-WITH-SM3"}, b),
        *[
            lambda h, b, name=name: ({k: v for k, v in h.items() if k != name}, b)
            for name in (
                "wechatpay-timestamp",
                "wechatpay-nonce",
                "wechatpay-signature",
                "wechatpay-serial",
                "wechatpay-signature-type",
            )
        ],
    ],
    ids=[
        "one-byte",
        "appended",
        "signtest-probe",
        "unknown-serial",
        "other-nonce",
        "other-signature-type",
        "no-timestamp",
        "no-nonce",
        "no-signature",
        "no-serial",
        "no-signature-type",
    ],
)
def test_a_tampered_notification_is_refused(
    wechatpay: WeChatPayAdapter,
    captured: ReceivedRequest,
    tamper: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
) -> None:
    headers, body = tamper(dict(captured.headers), captured.body)

    with pytest.raises(NotificationSignatureError):
        wechatpay.parse_notification(headers, body)


def test_a_notification_signed_with_another_key_is_refused(
    wechatpay: WeChatPayAdapter, settings: Settings, captured: ReceivedRequest
) -> None:
    headers = signed_as_platform(settings, captured.body, key=OTHER_KEY)

    with pytest.raises(NotificationSignatureError):
        wechatpay.parse_notification(headers, captured.body)
    assert wechatpay.parse_notification(signed_as_platform(settings, captured.body), captured.body)


@pytest.mark.parametrize(
    "change", [{"mchid": "1900000001"}, {"appid": "wx0000000000000000"}], ids=["mchid", "appid"]
)
def test_a_genuine_notification_for_another_merchant_is_a_mismatch(
    wechatpay: WeChatPayAdapter,
    settings: Settings,
    captured: ReceivedRequest,
    change: dict[str, str],
) -> None:
    body = resealed(settings, captured.body, lambda resource: resource.update(change))

    with pytest.raises(NotificationMismatch):
        wechatpay.parse_notification(signed_as_platform(settings, body), body)


def _sealed_with_another_key(envelope: dict[str, Any]) -> None:
    resource = envelope["resource"]
    resource["ciphertext"] = encrypt_resource(
        secrets.token_bytes(32), resource["nonce"], resource["associated_data"], b"{}"
    )


def _cut_ciphertext(envelope: dict[str, Any]) -> None:
    ciphertext = base64.b64decode(envelope["resource"]["ciphertext"])
    envelope["resource"]["ciphertext"] = base64.b64encode(ciphertext[:-1]).decode()


@pytest.mark.parametrize(
    "change",
    [
        _sealed_with_another_key,
        _cut_ciphertext,
        lambda e: e["resource"].update(associated_data="refund"),
        lambda e: e["resource"].update(algorithm="AEAD_SM4_GCM"),
        lambda e: e.update(event_type="REFUND.SUCCESS"),  # a transaction is no refund
        lambda e: e.pop("resource"),
    ],
    ids=[
        "other-apiv3-key",
        "cut-ciphertext",
        "other-associated-data",
        "other-algorithm",
        "refund-event-with-transaction",
        "no-resource",
    ],
)
def test_a_genuine_notification_that_cannot_be_read_is_a_format_error(
    wechatpay: WeChatPayAdapter,
    settings: Settings,
    captured: ReceivedRequest,
    change: Callable[[dict[str, Any]], None],
) -> None:
    envelope = json.loads(captured.body)
    change(envelope)
    body = json.dumps(envelope).encode()

    with pytest.raises(NotificationFormatError):
        wechatpay.parse_notification(signed_as_platform(settings, body), body)


def test_a_genuine_notification_of_another_event_type_is_ignored(
    wechatpay: WeChatPayAdapter, settings: Settings, captured: ReceivedRequest
) -> None:
    envelope = {**json.loads(captured.body), "event_type": "TRANSACTION.CLOSED"}
    body = json.dumps(envelope).encode()

    assert wechatpay.parse_notification(signed_as_platform(settings, body), body) is None


def test_a_genuine_but_unreadable_body_is_a_format_error(
    wechatpay: WeChatPayAdapter, settings: Settings
) -> None:
    body = b'{"id": "EV-1", "event_type": "TRANSACTION.SUCCESS"}'

    with pytest.raises(NotificationFormatError):
        wechatpay.parse_notification(signed_as_platform(settings, body), body)


# -- notifications: known answers, acknowledgement, schedule ----------------------


def test_a_notification_rendered_by_the_sandbox_verifies_in_the_adapter(
    wechatpay: WeChatPayAdapter, settings: Settings, order_id: str
) -> None:
    event = Event(
        id="EV-018D2A7E",
        type="refund.succeeded",
        created=int(time.time()),
        data=EventData(
            payment_id="pay_1",
            out_trade_no=order_id,
            merchant_id=MERCHANT,
            amount=1_234,
            currency="CNY",
            txn_id="4200001234",
            status="succeeded",
            refund_id="rf_known",
        ),
    )
    protocol = notifications(settings)

    first, second = protocol.render(event), protocol.render(event)

    assert first.headers["Wechatpay-Nonce"] != second.headers["Wechatpay-Nonce"]
    for message in (first, second):
        assert wechatpay.parse_notification(message.headers, message.body) == Notification(
            notification_id="EV-018D2A7E",
            kind=NotificationKind.REFUND_SUCCEEDED,
            order_id=order_id,
            channel_payment_id=order_id,
            channel_txn_id="4200001234",
            amount=1_234,
            currency="CNY",
            merchant_id=None,
            refund_id="rf_known",
        )


def test_a_closed_refund_is_a_failed_refund(
    wechatpay: WeChatPayAdapter, settings: Settings, order_id: str
) -> None:
    failed = Event(
        id="EV-018D2A7F",
        type="refund.failed",
        created=int(time.time()),
        data=EventData(
            payment_id="pay_1",
            out_trade_no=order_id,
            merchant_id=MERCHANT,
            amount=1_234,
            currency="CNY",
            txn_id="4200001234",
            status="failed",
            refund_id="rf_closed",
        ),
    )
    abnormal = notifications(settings).render(failed).body
    envelope = json.loads(resealed(settings, abnormal, lambda r: r.update(refund_status="CLOSED")))
    body = json.dumps(envelope | {"event_type": "REFUND.CLOSED"}).encode()

    notification = wechatpay.parse_notification(signed_as_platform(settings, body), body)

    assert notification is not None
    assert (notification.kind, notification.refund_id) == (
        NotificationKind.REFUND_FAILED,
        "rf_closed",
    )


def test_wechat_pay_sends_no_declines_and_takes_200_or_204(settings: Settings) -> None:
    protocol = notifications(settings)

    assert protocol.event_types == {"payment.succeeded", "refund.succeeded", "refund.failed"}
    assert protocol.retry_delays == WECHAT_SCHEDULE
    assert protocol.accepted(200, b"") and protocol.accepted(204, b"")
    assert not any(protocol.accepted(status, b"") for status in (201, 202, 400, 500))


def test_the_acknowledgement_is_an_empty_204_and_a_rejection_says_fail(
    wechatpay: WeChatPayAdapter,
) -> None:
    ack = wechatpay.acknowledgement()
    assert (ack.status_code, ack.body) == (204, "")

    error = {"error": {"type": "invalid_request", "code": "x", "message": "bad", "param": None}}
    rejection = wechatpay.rejection(400, error)
    assert rejection.status_code == 400
    assert json.loads(rejection.body) == {"code": "FAIL", "message": "bad", **error}


FAST_TIME_SCALE = 0.00002  # WeChat Pay's ~24 h schedule in about two seconds


@pytest.fixture(scope="module")
def fast_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = _new_sandbox(FAST_TIME_SCALE)
    process = _start_sandbox(running, "", tmp_path_factory.mktemp("fast") / "sandbox.log")
    try:
        yield running
    finally:
        _stop_sandbox(process)


async def test_an_unacknowledged_notification_follows_wechat_pays_schedule(
    fast_sandbox: RunningSandbox, client: httpx.AsyncClient, receiver: Receiver, order_id: str
) -> None:
    inbox = receiver.inbox(fail_first=100)
    control = Control(client, fast_sandbox.base_url)
    await wechatpay_adapter(fast_sandbox, client).create_payment(
        payment_request(order_id, inbox.url)
    )

    await control.pay(order_id)

    attempts = await wait_for(
        lambda: control.deliveries(order_id), lambda got: len(got) >= 16, "16 attempts"
    )
    assert len(attempts) == 16
    assert [a["waited_s"] for a in attempts] == [0, *WECHAT_SCHEDULE]
    at = [a["at_s"] for a in attempts]
    planned = list(itertools.accumulate([0, *WECHAT_SCHEDULE]))
    assert at == sorted(at)
    assert all(made >= due - 0.001 for made, due in zip(at, planned, strict=True))
    assert {(a["status_code"], a["accepted"]) for a in attempts} == {(500, False)}
    received = await notices(inbox, 16)
    assert len({json.loads(r.body)["id"] for r in received}) == 1  # one event, sent 16 times
    assert len({r.headers["wechatpay-nonce"] for r in received}) == 16  # each signed afresh


@dataclass
class AcknowledgingInbox:
    """A notify_url that answers as our API does once it has taken a notification."""

    url: str


@pytest.fixture(scope="module")
def acknowledging_inbox() -> Iterator[AcknowledgingInbox]:
    port = free_port()

    async def notify(request: Request) -> Response:
        await request.body()
        return Response(ACKNOWLEDGEMENT.body, status_code=ACKNOWLEDGEMENT.status_code)

    app = Starlette(routes=[Route("/notify", notify, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="wechatpay-acknowledging", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("acknowledging inbox did not start")
        time.sleep(0.01)  # poll interval
    yield AcknowledgingInbox(f"http://127.0.0.1:{port}/notify")
    server.should_exit = True
    thread.join(timeout=10)


async def test_our_204_acknowledgement_ends_the_retries(
    fast_sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    acknowledging_inbox: AcknowledgingInbox,
    order_id: str,
) -> None:
    control = Control(client, fast_sandbox.base_url)
    await wechatpay_adapter(fast_sandbox, client).create_payment(
        payment_request(order_id, acknowledging_inbox.url)
    )

    await control.pay(order_id)

    (attempt,) = await wait_for(
        lambda: control.deliveries(order_id), lambda got: len(got) >= 1, "the first attempt"
    )
    assert (attempt["status_code"], attempt["accepted"]) == (204, True)
    # Proving that nothing more comes takes a wait: 0.1 s is 5,000 channel seconds,
    # in which an unacknowledged notification would have been retried six times.
    await asyncio.sleep(0.1)
    assert len(await control.deliveries(order_id)) == 1
