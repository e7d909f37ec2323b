"""The sandbox adapter against the live sandbox channel, over real HTTP.

Each test tells what our platform (through the adapter), the buyer (through
the cashier) or the channel (through the control API) does, and what must
then be true. Nothing here waits by sleeping: `eventually` polls a condition.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import httpx
import pytest

from channels.base import (
    ChannelAdapter,
    ChannelName,
    CreatePaymentRequest,
    NotificationKind,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)
from channels.errors import (
    ChannelRejected,
    ChannelUnavailable,
    NotificationFormatError,
    NotificationSignatureError,
    PaymentNotFound,
)
from channels.sandbox.money import format_amount
from channels.sandbox_adapter import SandboxChannel
from channels.signature import SIGNATURE_HEADER, sign

if TYPE_CHECKING:
    from tests.channels.conftest import Control, Inbox, ReceivedRequest, Receiver, RunningSandbox

T = TypeVar("T")
Channels = dict[ChannelName, ChannelAdapter]


async def eventually(
    probe: Callable[[], Awaitable[T]], until: Callable[[T], bool], timeout: float = 5.0
) -> T:
    """Poll `probe` every 20 ms until `until(value)` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.02)


async def received(inbox: Inbox, count: int) -> list[ReceivedRequest]:
    return await eventually(inbox.received, lambda requests: len(requests) >= count)


def payment_request(
    order_id: str, inbox: Inbox, amount: int = 1234, currency: str = "USD"
) -> CreatePaymentRequest:
    return CreatePaymentRequest(
        order_id=order_id,
        merchant_id="merchant_tea_shop",
        amount=amount,
        currency=currency,
        description="Two boxes of oolong",
        notify_url=inbox.url,
    )


def refund_request(order_id: str, amount: int, refund_id: str | None = None) -> RefundRequest:
    return RefundRequest(
        refund_id=refund_id or f"rf_{secrets.token_hex(6)}",
        order_id=order_id,
        amount=amount,
        currency="USD",
        reason="customer changed their mind",
    )


async def paid_order(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await channel.create_payment(payment_request(order_id, inbox))
    await control.pay(order_id, notify="drop")


# -- creating and querying payments -------------------------------------------


async def test_the_sandbox_reports_healthy(
    sandbox: RunningSandbox, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{sandbox.base_url}/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_creating_a_payment_twice_returns_the_same_payment(
    alipay: ChannelAdapter, sandbox: RunningSandbox, order_id: str, inbox: Inbox
) -> None:
    first = await alipay.create_payment(payment_request(order_id, inbox))
    again = await alipay.create_payment(payment_request(order_id, inbox))

    assert again == first
    assert first.checkout_url == f"{sandbox.base_url}/alipay/checkout/{first.channel_payment_id}"
    assert first.qr_payload


async def test_a_card_payment_has_no_qr_code(
    channels: Channels, order_id: str, inbox: Inbox
) -> None:
    created = await channels[ChannelName.CARD].create_payment(payment_request(order_id, inbox))

    assert created.qr_payload is None
    assert "/card/checkout/" in created.checkout_url


async def test_reusing_an_order_id_for_another_amount_conflicts(
    alipay: ChannelAdapter, order_id: str, inbox: Inbox
) -> None:
    await alipay.create_payment(payment_request(order_id, inbox, amount=1000))

    with pytest.raises(ChannelRejected) as error:
        await alipay.create_payment(payment_request(order_id, inbox, amount=2000))
    assert error.value.code == "out_trade_no_conflict"
    assert not error.value.retryable


async def test_a_zero_amount_is_rejected(
    alipay: ChannelAdapter, order_id: str, inbox: Inbox
) -> None:
    with pytest.raises(ChannelRejected) as error:
        await alipay.create_payment(payment_request(order_id, inbox, amount=0))
    assert error.value.code == "invalid_request"


async def test_a_new_payment_is_pending(
    alipay: ChannelAdapter, order_id: str, inbox: Inbox
) -> None:
    created = await alipay.create_payment(payment_request(order_id, inbox))

    state = await alipay.query_payment(order_id)

    assert state.status is PaymentStatus.PENDING
    assert (state.order_id, state.channel_payment_id) == (order_id, created.channel_payment_id)
    assert (state.amount, state.currency, state.merchant_id) == (1234, "USD", "merchant_tea_shop")
    assert state.channel_txn_id is None


async def test_an_unknown_order_is_not_found(alipay: ChannelAdapter, order_id: str) -> None:
    with pytest.raises(PaymentNotFound) as error:
        await alipay.query_payment(order_id)
    assert error.value.code == "payment_not_found"


async def test_payments_are_per_channel(channels: Channels, order_id: str, inbox: Inbox) -> None:
    await channels[ChannelName.ALIPAY].create_payment(payment_request(order_id, inbox))

    with pytest.raises(PaymentNotFound):
        await channels[ChannelName.WECHATPAY].query_payment(order_id)


async def test_a_wrong_api_key_is_rejected_without_leaking_it(
    sandbox: RunningSandbox, client: httpx.AsyncClient, order_id: str
) -> None:
    wrong_key = "wrong_" + secrets.token_hex(8)
    channel = SandboxChannel(
        ChannelName.ALIPAY,
        f"{sandbox.base_url}/alipay",
        wrong_key,
        sandbox.webhook_secret,
        300,
        client,
    )

    with pytest.raises(ChannelRejected) as error:
        await channel.query_payment(order_id)
    assert error.value.code == "unauthorized"
    assert wrong_key not in str(error.value) and wrong_key not in repr(channel)


async def test_an_unreachable_channel_is_unavailable(
    client: httpx.AsyncClient, order_id: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        port = sock.getsockname()[1]
        channel = SandboxChannel(
            ChannelName.CARD, f"http://127.0.0.1:{port}/card", "key", b"secret", 300, client
        )
        with pytest.raises(ChannelUnavailable) as error:
            await channel.query_payment(order_id)
    assert error.value.retryable


async def test_injected_api_failures_are_unavailable_then_the_call_succeeds(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await control.fail_api(order_id, times=2)

    for _ in range(2):
        with pytest.raises(ChannelUnavailable) as error:
            await alipay.create_payment(payment_request(order_id, inbox))
        assert error.value.code == "unavailable"
    created = await alipay.create_payment(payment_request(order_id, inbox))

    assert (await alipay.query_payment(order_id)).channel_payment_id == created.channel_payment_id


# -- closing -------------------------------------------------------------------


async def test_closing_a_pending_payment_closes_it(
    alipay: ChannelAdapter, order_id: str, inbox: Inbox
) -> None:
    await alipay.create_payment(payment_request(order_id, inbox))

    result = await alipay.close_payment(order_id)
    again = await alipay.close_payment(order_id)

    assert result.closed and result.payment.status is PaymentStatus.CLOSED
    assert again.closed
    assert (await alipay.query_payment(order_id)).status is PaymentStatus.CLOSED


async def test_closing_after_the_buyer_paid_reports_the_payment(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(alipay, control, order_id, inbox)

    result = await alipay.close_payment(order_id)

    assert not result.closed
    assert result.payment.status is PaymentStatus.PAID
    assert result.payment.channel_txn_id


async def test_a_closed_payment_is_paid_only_when_the_channel_forces_it(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await alipay.create_payment(payment_request(order_id, inbox))
    await alipay.close_payment(order_id)

    refused = await control.post(f"/payments/{order_id}/pay")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "payment_closed"

    await control.pay(order_id, force=True)  # the late payment
    assert (await alipay.query_payment(order_id)).status is PaymentStatus.PAID
    (notice,) = await received(inbox, 1)
    assert (
        alipay.parse_notification(notice.headers, notice.body).kind
        is NotificationKind.PAYMENT_SUCCEEDED
    )


# -- refunds -------------------------------------------------------------------


async def test_a_refund_is_idempotent_by_refund_id_and_can_be_queried(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(alipay, control, order_id, inbox)
    request = refund_request(order_id, amount=1000)

    refund = await alipay.refund(request)
    again = await alipay.refund(request)

    assert refund.status is RefundStatus.SUCCEEDED
    assert again == refund
    assert await alipay.query_refund(request.refund_id) == refund
    with pytest.raises(ChannelRejected) as error:
        await alipay.refund(request.model_copy(update={"amount": 1}))
    assert error.value.code == "refund_id_conflict"


async def test_refunds_beyond_the_paid_amount_are_refused(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(alipay, control, order_id, inbox)
    await alipay.refund(refund_request(order_id, amount=1000))

    with pytest.raises(ChannelRejected) as error:
        await alipay.refund(refund_request(order_id, amount=235))
    assert error.value.code == "refund_exceeds_payment"
    assert (
        await alipay.refund(refund_request(order_id, amount=234))
    ).status is RefundStatus.SUCCEEDED


async def test_an_unpaid_payment_cannot_be_refunded(
    alipay: ChannelAdapter, order_id: str, inbox: Inbox
) -> None:
    await alipay.create_payment(payment_request(order_id, inbox))

    with pytest.raises(ChannelRejected) as error:
        await alipay.refund(refund_request(order_id, amount=100))
    assert error.value.code == "payment_not_paid"


async def test_an_unknown_refund_is_not_found(alipay: ChannelAdapter) -> None:
    with pytest.raises(PaymentNotFound) as error:
        await alipay.query_refund(f"rf_{secrets.token_hex(6)}")
    assert error.value.code == "refund_not_found"


async def test_a_pending_refund_succeeds_when_the_channel_completes_it(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(alipay, control, order_id, inbox)
    await control.refund_behaviour(order_id, "pending")
    request = refund_request(order_id, amount=500)

    assert (await alipay.refund(request)).status is RefundStatus.PENDING
    await control.complete_refund(request.refund_id)

    assert (await alipay.query_refund(request.refund_id)).status is RefundStatus.SUCCEEDED
    (notice,) = await received(inbox, 1)
    notification = alipay.parse_notification(notice.headers, notice.body)
    assert (notification.kind, notification.refund_id) == (
        NotificationKind.REFUND_SUCCEEDED,
        request.refund_id,
    )


async def test_a_refused_refund_fails_and_says_why(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(alipay, control, order_id, inbox)
    await control.refund_behaviour(order_id, "fail")

    refund = await alipay.refund(refund_request(order_id, amount=500))

    assert (refund.status, refund.failure_reason) == (RefundStatus.FAILED, "sandbox_refund_refused")
    (notice,) = await received(inbox, 1)
    assert (
        alipay.parse_notification(notice.headers, notice.body).kind
        is NotificationKind.REFUND_FAILED
    )


# -- notifications ---------------------------------------------------------------


async def test_a_payment_notification_is_signed_and_parses_into_our_terms(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    created = await alipay.create_payment(payment_request(order_id, inbox))

    await control.pay(order_id)

    (notice,) = await received(inbox, 1)
    assert notice.headers["content-type"] == "application/json"
    notification = alipay.parse_notification(notice.headers, notice.body)
    state = await alipay.query_payment(order_id)
    assert notification.kind is NotificationKind.PAYMENT_SUCCEEDED
    assert notification.notification_id.startswith("evt_")
    assert (notification.order_id, notification.channel_payment_id) == (
        order_id,
        created.channel_payment_id,
    )
    assert notification.channel_txn_id == state.channel_txn_id is not None
    assert (notification.amount, notification.currency, notification.merchant_id) == (
        1234,
        "USD",
        "merchant_tea_shop",
    )
    assert notification.refund_id is None


async def test_a_tampered_notification_is_refused(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await alipay.create_payment(payment_request(order_id, inbox))
    await control.pay(order_id)
    (notice,) = await received(inbox, 1)

    tampered = notice.body.replace(b"1234", b"1235")
    with pytest.raises(NotificationSignatureError):
        alipay.parse_notification(notice.headers, tampered)
    unsigned = {k: v for k, v in notice.headers.items() if k != SIGNATURE_HEADER.lower()}
    with pytest.raises(NotificationSignatureError):
        alipay.parse_notification(unsigned, notice.body)


async def test_a_correctly_signed_but_unreadable_body_is_a_format_error(
    alipay: ChannelAdapter, sandbox: RunningSandbox
) -> None:
    for body in (b"not json", b'{"id": "evt_1", "type": "payment.succeeded"}'):
        headers = {SIGNATURE_HEADER: sign(sandbox.webhook_secret, body, int(time.time()))}
        with pytest.raises(NotificationFormatError):
            alipay.parse_notification(headers, body)


async def test_failed_deliveries_are_retried_until_acknowledged(
    alipay: ChannelAdapter, control: Control, receiver: Receiver, order_id: str
) -> None:
    inbox = receiver.inbox(fail_first=2)
    await alipay.create_payment(payment_request(order_id, inbox))

    await control.pay(order_id)

    deliveries = await eventually(lambda: control.deliveries(order_id), lambda d: len(d) >= 3)
    assert [(d["attempt"], d["status_code"]) for d in deliveries] == [(1, 500), (2, 500), (3, 200)]
    assert len({d["event_id"] for d in deliveries}) == 1
    notices = await inbox.received()
    ids = {alipay.parse_notification(n.headers, n.body).notification_id for n in notices}
    assert ids == {deliveries[0]["event_id"]}


async def test_a_duplicated_notification_carries_the_same_event_id(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await alipay.create_payment(payment_request(order_id, inbox))

    await control.pay(order_id, notify="duplicate")

    first, second = await received(inbox, 2)
    assert (
        alipay.parse_notification(first.headers, first.body).notification_id
        == alipay.parse_notification(second.headers, second.body).notification_id
    )


async def test_a_dropped_notification_is_never_sent(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await alipay.create_payment(payment_request(order_id, inbox))

    await control.pay(order_id, notify="drop")
    assert await control.deliveries(order_id) == []

    # A later event does arrive, and it is the only one.
    await alipay.refund(refund_request(order_id, amount=100))
    (notice,) = await received(inbox, 1)
    assert (
        alipay.parse_notification(notice.headers, notice.body).kind
        is NotificationKind.REFUND_SUCCEEDED
    )
    assert [d["type"] for d in await control.deliveries(order_id)] == ["refund.succeeded"]


async def test_a_delayed_notification_arrives_after_the_delay(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await alipay.create_payment(payment_request(order_id, inbox))
    started = time.monotonic()

    await control.pay(order_id, notify="delay", delay_ms=300)

    (notice,) = await received(inbox, 1)
    assert notice.received_at - started >= 0.3


async def test_a_declined_payment_is_notified(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await alipay.create_payment(payment_request(order_id, inbox))

    await control.decline(order_id)

    (notice,) = await received(inbox, 1)
    assert (
        alipay.parse_notification(notice.headers, notice.body).kind
        is NotificationKind.PAYMENT_DECLINED
    )
    assert (await alipay.query_payment(order_id)).status is PaymentStatus.DECLINED


async def test_a_refund_notification_carries_the_refunded_amount(
    alipay: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(alipay, control, order_id, inbox)
    request = refund_request(order_id, amount=400)

    await alipay.refund(request)

    (notice,) = await received(inbox, 1)
    notification = alipay.parse_notification(notice.headers, notice.body)
    assert (notification.kind, notification.refund_id) == (
        NotificationKind.REFUND_SUCCEEDED,
        request.refund_id,
    )
    assert (notification.amount, notification.order_id) == (400, order_id)


def test_the_acknowledgement_is_a_small_json_ok(alipay: ChannelAdapter) -> None:
    ack = alipay.acknowledgement()

    assert (ack.status_code, ack.body, ack.media_type) == (
        200,
        '{"received":true}',
        "application/json",
    )


# -- the cashier -------------------------------------------------------------------


async def test_the_checkout_page_shows_merchant_and_amount(
    channels: Channels, client: httpx.AsyncClient, order_id: str, inbox: Inbox
) -> None:
    created = await channels[ChannelName.WECHATPAY].create_payment(
        payment_request(order_id, inbox, amount=5000, currency="JPY")
    )

    page = await client.get(created.checkout_url)

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "merchant_tea_shop" in page.text and "5,000 JPY" in page.text


async def test_paying_on_the_checkout_page_marks_the_payment_paid(
    alipay: ChannelAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await alipay.create_payment(payment_request(order_id, inbox))
    page = await client.get(created.checkout_url)
    assert "12.34 USD" in page.text
    pay_action = re.search(r'<form method="post" action="([^"]+/pay)"', page.text)
    assert pay_action is not None

    result = await client.post(sandbox.base_url + pay_action.group(1))
    again = await client.post(sandbox.base_url + pay_action.group(1))

    assert result.status_code == again.status_code == 200
    assert "Payment received" in result.text
    assert (await alipay.query_payment(order_id)).status is PaymentStatus.PAID
    (notice,) = await received(inbox, 1)
    assert (
        alipay.parse_notification(notice.headers, notice.body).kind
        is NotificationKind.PAYMENT_SUCCEEDED
    )


async def test_a_closed_payment_cannot_be_paid_on_the_checkout_page(
    alipay: ChannelAdapter, client: httpx.AsyncClient, order_id: str, inbox: Inbox
) -> None:
    created = await alipay.create_payment(payment_request(order_id, inbox))
    await alipay.close_payment(order_id)

    result = await client.post(f"{created.checkout_url}/pay")

    assert result.status_code == 409 and "This payment is closed" in result.text
    assert (await alipay.query_payment(order_id)).status is PaymentStatus.CLOSED


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1234, "USD", "12.34 USD"),
        (5, "EUR", "0.05 EUR"),
        (123456789, "CNY", "1,234,567.89 CNY"),
        (5000, "JPY", "5,000 JPY"),
    ],
)
def test_amounts_are_shown_with_the_currency_s_decimals(
    amount: int, currency: str, shown: str
) -> None:
    assert format_amount(amount, currency) == shown
