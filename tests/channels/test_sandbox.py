"""What every channel does alike, each over its own protocol, against the live sandbox.

Each test runs on Alipay, WeChat Pay and the card gateway through their real
adapters: our platform (the adapter), the buyer (the cashier) or the channel
(the control API) acts, and the test checks what must then be true. The
protocol-specific cases (signatures, codes, schedules) live in each channel's
own test file. Nothing here waits by sleeping: `eventually` polls a condition.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from channels.base import (
    ChannelAdapter,
    ChannelName,
    CreatePaymentRequest,
    Notification,
    NotificationKind,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)
from channels.errors import ChannelRejected, ChannelUnavailable, PaymentNotFound
from channels.registry import build_channels
from sandbox.journal import read_state
from sandbox.money import format_amount
from tests.channels.conftest import (
    Control,
    Inbox,
    ReceivedRequest,
    Receiver,
    RestartableSandbox,
    RunningSandbox,
)

T = TypeVar("T")
MERCHANT = "merchant_tea_shop"


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


@pytest.fixture(params=list(ChannelName), ids=[c.value for c in ChannelName])
def channel(request: pytest.FixtureRequest, channels: dict[str, ChannelAdapter]) -> ChannelAdapter:
    return channels[request.param.value]


def payment_request(order_id: str, inbox: Inbox, amount: int = 1234) -> CreatePaymentRequest:
    return CreatePaymentRequest(
        order_id=order_id,
        merchant_id=MERCHANT,
        amount=amount,
        currency="CNY",
        description="Two boxes of oolong",
        notify_url=inbox.url,
    )


def refund_request(order_id: str, amount: int, refund_id: str | None = None) -> RefundRequest:
    return RefundRequest(
        refund_id=refund_id or f"rf_{secrets.token_hex(6)}",
        order_id=order_id,
        amount=amount,
        currency="CNY",
        reason="customer changed their mind",
    )


async def paid_order(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await channel.create_payment(payment_request(order_id, inbox))
    await control.pay(order_id, notify="drop")


def parsed(channel: ChannelAdapter, notice: ReceivedRequest) -> Notification:
    notification = channel.parse_notification(notice.headers, notice.body)
    assert notification is not None
    return notification


async def refused_or_failed(channel: ChannelAdapter, request: RefundRequest) -> str:
    """A refused refund: Alipay refuses at once, the others report a failed refund."""
    try:
        state = await channel.refund(request)
    except ChannelRejected as error:
        return error.code
    assert state.status is RefundStatus.FAILED
    return state.failure_reason or ""


# -- creating and querying payments -------------------------------------------


async def test_the_sandbox_reports_healthy(
    sandbox: RunningSandbox, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{sandbox.base_url}/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_creating_a_payment_twice_returns_the_same_payment(
    channel: ChannelAdapter, sandbox: RunningSandbox, order_id: str, inbox: Inbox
) -> None:
    first = await channel.create_payment(payment_request(order_id, inbox))
    again = await channel.create_payment(payment_request(order_id, inbox))

    assert again.channel_payment_id == first.channel_payment_id
    assert first.checkout_url.startswith(f"{sandbox.base_url}/{channel.name.value}/")
    assert (first.qr_payload is None) == (channel.name is ChannelName.CARD)


async def test_reusing_an_order_id_for_another_amount_is_refused(
    channel: ChannelAdapter, order_id: str, inbox: Inbox
) -> None:
    await channel.create_payment(payment_request(order_id, inbox, amount=1000))

    with pytest.raises(ChannelRejected) as error:
        await channel.create_payment(payment_request(order_id, inbox, amount=2000))
    assert not error.value.retryable
    assert (await channel.query_payment(order_id)).amount == 1000


async def test_a_new_payment_is_pending(
    channel: ChannelAdapter, order_id: str, inbox: Inbox
) -> None:
    await channel.create_payment(payment_request(order_id, inbox))

    state = await channel.query_payment(order_id)

    assert state.status is PaymentStatus.PENDING
    assert (state.order_id, state.amount, state.currency) == (order_id, 1234, "CNY")
    assert state.merchant_id in (MERCHANT, None)  # Alipay's query does not echo the shop
    assert state.channel_txn_id is None


async def test_an_unknown_order_is_not_found(channel: ChannelAdapter, order_id: str) -> None:
    with pytest.raises(PaymentNotFound):
        await channel.query_payment(order_id)


async def test_payments_are_per_channel(
    channels: dict[str, ChannelAdapter], order_id: str, inbox: Inbox
) -> None:
    await channels["alipay"].create_payment(payment_request(order_id, inbox))

    for other in ("wechatpay", "card"):
        with pytest.raises(PaymentNotFound):
            await channels[other].query_payment(order_id)


async def test_an_unreachable_channel_is_unavailable(
    channel: ChannelAdapter, sandbox: RunningSandbox, client: httpx.AsyncClient, order_id: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        settings = sandbox.settings().model_copy(
            update={"sandbox_base_url": f"http://127.0.0.1:{sock.getsockname()[1]}"}
        )
        nowhere = build_channels(settings, client)[channel.name.value]
        with pytest.raises(ChannelUnavailable) as error:
            await nowhere.query_payment(order_id)
    assert error.value.retryable


async def test_injected_api_failures_are_unavailable_then_the_call_succeeds(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await control.fail_api(order_id, times=2)

    for _ in range(2):
        with pytest.raises(ChannelUnavailable):
            await channel.create_payment(payment_request(order_id, inbox))
    created = await channel.create_payment(payment_request(order_id, inbox))

    assert (await channel.query_payment(order_id)).channel_payment_id == created.channel_payment_id


# -- closing -------------------------------------------------------------------


async def test_closing_a_pending_payment_closes_it(
    channel: ChannelAdapter, order_id: str, inbox: Inbox
) -> None:
    await channel.create_payment(payment_request(order_id, inbox))

    result = await channel.close_payment(order_id)
    again = await channel.close_payment(order_id)

    assert result.closed and result.payment.status is PaymentStatus.CLOSED
    assert again.closed
    assert (await channel.query_payment(order_id)).status is PaymentStatus.CLOSED


async def test_closing_after_the_buyer_paid_reports_the_payment(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(channel, control, order_id, inbox)

    result = await channel.close_payment(order_id)

    assert not result.closed
    assert result.payment.status is PaymentStatus.PAID
    assert result.payment.channel_txn_id


async def test_a_closed_payment_is_paid_only_when_the_channel_forces_it(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await channel.create_payment(payment_request(order_id, inbox))
    await channel.close_payment(order_id)

    refused = await control.post(f"/payments/{order_id}/pay")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "payment_closed"

    await control.pay(order_id, force=True)  # the late payment
    assert (await channel.query_payment(order_id)).status is PaymentStatus.PAID
    (notice,) = await received(inbox, 1)
    assert parsed(channel, notice).kind is NotificationKind.PAYMENT_SUCCEEDED


# -- refunds -------------------------------------------------------------------


async def test_a_refund_is_idempotent_by_refund_id_and_can_be_queried(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(channel, control, order_id, inbox)
    request = refund_request(order_id, amount=1000)

    refund = await channel.refund(request)
    again = await channel.refund(request)

    assert refund.status is RefundStatus.SUCCEEDED
    assert (again.refund_id, again.status, again.amount) == (request.refund_id, refund.status, 1000)
    queried = await channel.query_refund(request.refund_id, order_id)
    assert (queried.status, queried.amount) == (RefundStatus.SUCCEEDED, 1000)
    with pytest.raises(ChannelRejected):
        await channel.refund(request.model_copy(update={"amount": 1}))


async def test_refunds_beyond_the_paid_amount_are_refused(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(channel, control, order_id, inbox)
    await channel.refund(refund_request(order_id, amount=1000))

    with pytest.raises(ChannelRejected):
        await channel.refund(refund_request(order_id, amount=235))
    last = await channel.refund(refund_request(order_id, amount=234))
    assert last.status is RefundStatus.SUCCEEDED


async def test_an_unpaid_payment_cannot_be_refunded(
    channel: ChannelAdapter, order_id: str, inbox: Inbox
) -> None:
    await channel.create_payment(payment_request(order_id, inbox))

    with pytest.raises(ChannelRejected):
        await channel.refund(refund_request(order_id, amount=100))


async def test_an_unknown_refund_is_not_found(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(channel, control, order_id, inbox)
    with pytest.raises(PaymentNotFound):
        await channel.query_refund(f"rf_{secrets.token_hex(6)}", order_id)


async def test_a_pending_refund_succeeds_when_the_channel_completes_it(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(channel, control, order_id, inbox)
    await control.refund_behaviour(order_id, "pending")
    request = refund_request(order_id, amount=500)

    assert (await channel.refund(request)).status is RefundStatus.PENDING
    await control.complete_refund(request.refund_id)

    queried = await channel.query_refund(request.refund_id, order_id)
    assert queried.status is RefundStatus.SUCCEEDED
    (notice,) = await received(inbox, 1)
    notification = parsed(channel, notice)
    assert (notification.kind, notification.refund_id, notification.order_id) == (
        NotificationKind.REFUND_SUCCEEDED,
        request.refund_id,
        order_id,
    )


async def test_a_refused_refund_says_why_and_the_money_stays_refundable(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(channel, control, order_id, inbox)
    await control.refund_behaviour(order_id, "fail")

    assert await refused_or_failed(channel, refund_request(order_id, amount=1234))

    await control.refund_behaviour(order_id, "succeed")
    whole = await channel.refund(refund_request(order_id, amount=1234))
    assert whole.status is RefundStatus.SUCCEEDED


# -- notifications (the notifier is shared; each channel renders its own) --------


async def test_failed_deliveries_are_retried_until_acknowledged(
    channel: ChannelAdapter, control: Control, receiver: Receiver, order_id: str
) -> None:
    inbox = receiver.inbox(fail_first=2)
    await channel.create_payment(payment_request(order_id, inbox))

    await control.pay(order_id)

    deliveries = await eventually(lambda: control.deliveries(order_id), lambda d: len(d) >= 3)
    assert [(d["attempt"], d["status_code"], d["accepted"]) for d in deliveries] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert len({d["event_id"] for d in deliveries}) == 1
    notices = await inbox.received()
    assert len({parsed(channel, n).notification_id for n in notices}) == 1


async def test_a_duplicated_notification_carries_the_same_id(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await channel.create_payment(payment_request(order_id, inbox))

    await control.pay(order_id, notify="duplicate")

    first, second = await received(inbox, 2)
    assert parsed(channel, first).notification_id == parsed(channel, second).notification_id


async def test_a_dropped_notification_is_never_sent(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await paid_order(channel, control, order_id, inbox)
    assert await control.deliveries(order_id) == []

    # A later event does arrive, and it is the only one.
    await control.refund_behaviour(order_id, "pending")
    request = refund_request(order_id, amount=100)
    await channel.refund(request)
    await control.complete_refund(request.refund_id)
    (notice,) = await received(inbox, 1)
    assert parsed(channel, notice).kind is NotificationKind.REFUND_SUCCEEDED
    # The sandbox logs the attempt once our answer reached it, a moment after the receiver
    # has the notice.
    deliveries = await eventually(lambda: control.deliveries(order_id), bool)
    assert [d["type"] for d in deliveries] == ["refund.succeeded"]


async def test_a_delayed_notification_arrives_after_the_delay(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await channel.create_payment(payment_request(order_id, inbox))
    started = time.monotonic()

    await control.pay(order_id, notify="delay", delay_ms=300)

    (notice,) = await received(inbox, 1)
    assert notice.received_at - started >= 0.3


@pytest.mark.parametrize("name", list(ChannelName), ids=[c.value for c in ChannelName])
async def test_a_notification_owed_at_a_crash_is_sent_after_the_restart(
    name: ChannelName,
    restartable_sandbox: RestartableSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    running = restartable_sandbox.running
    channel = build_channels(running.settings(), client)[name.value]
    control = Control(client, running.base_url)
    await channel.create_payment(payment_request(order_id, inbox))
    # Paid, its notification a minute off (a late payment's is all that tells of it).
    await control.pay(order_id, notify="delay", delay_ms=60_000)

    await asyncio.to_thread(restartable_sandbox.crash)
    await asyncio.to_thread(restartable_sandbox.start)

    (notice,) = await received(inbox, 1)  # at once after the restart, as a retry
    notification = parsed(channel, notice)
    assert (notification.kind, notification.order_id) == (
        NotificationKind.PAYMENT_SUCCEEDED,
        order_id,
    )

    async def owed() -> list[dict[str, object]]:
        return read_state(restartable_sandbox.store_path)["notices"]

    await eventually(owed, lambda notices: notices == [])  # taken: not sent at the next start


async def test_a_declined_payment_can_no_longer_be_paid(
    channel: ChannelAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await channel.create_payment(payment_request(order_id, inbox))

    await control.decline(order_id)

    state = await channel.query_payment(order_id)
    assert state.status in (PaymentStatus.DECLINED, PaymentStatus.CLOSED)
    if channel.name is ChannelName.WECHATPAY:
        return  # WeChat Pay tells nobody about a failed payment: the query does
    (notice,) = await received(inbox, 1)
    assert parsed(channel, notice).kind is NotificationKind.PAYMENT_DECLINED


# -- the wallets' cashier ------------------------------------------------------------


@pytest.mark.parametrize("name", ["alipay", "wechatpay"])
async def test_paying_on_the_cashier_marks_the_payment_paid_once(
    channels: dict[str, ChannelAdapter],
    name: str,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    channel = channels[name]
    created = await channel.create_payment(payment_request(order_id, inbox))
    assert created.qr_payload is not None
    page = await client.get(created.qr_payload, follow_redirects=True)
    assert "Two boxes of oolong" in page.text and "12.34 CNY" in page.text
    pay_action = re.search(r'<form method="post" action="([^"]+/pay)"', page.text)
    assert pay_action is not None

    result = await client.post(sandbox.base_url + pay_action.group(1))
    again = await client.post(sandbox.base_url + pay_action.group(1))

    assert result.status_code == again.status_code == 200
    assert "Payment received" in result.text
    assert (await channel.query_payment(order_id)).status is PaymentStatus.PAID
    (notice,) = await received(inbox, 1)
    assert parsed(channel, notice).kind is NotificationKind.PAYMENT_SUCCEEDED


async def test_a_closed_payment_cannot_be_paid_on_the_cashier(
    channels: dict[str, ChannelAdapter],
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    alipay = channels["alipay"]
    created = await alipay.create_payment(payment_request(order_id, inbox))
    await alipay.close_payment(order_id)
    assert created.qr_payload is not None

    result = await client.post(f"{created.qr_payload}/pay")

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
