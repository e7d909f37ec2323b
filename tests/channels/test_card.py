"""The card gateway: our adapter against the sandbox's PaymentIntents-style API, over real HTTP.

Each test tells what our platform (through `CardAdapter`), the buyer (on the
hosted card page) or the gateway (through the control API) does, and what
must then be true. Raw `httpx` calls show the gateway's own wire format where
the adapter would hide it. Nothing waits by sleeping: `wait_for` polls.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from channels.base import (
    ChannelAdapter,
    CreatePaymentRequest,
    Notification,
    NotificationKind,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)
from channels.card.adapter import CardAdapter, unix_now
from channels.card.mapping import create_params
from channels.card.wire import SIGNATURE_HEADER
from channels.errors import (
    ChannelRejected,
    ChannelUnavailable,
    NotificationSignatureError,
    PaymentNotFound,
)
from channels.registry import build_channels
from channels.signature import sign
from settings import CardSettings
from tests.channels.conftest import (
    Control,
    Inbox,
    ReceivedRequest,
    Receiver,
    RunningSandbox,
    _new_sandbox,
    _start_sandbox,
    _stop_sandbox,
)
from tests.support import wait_for

MERCHANT = "merchant_tea_shop"
AMOUNT = 1999
SUCCEEDS = "4242 4242 4242 4242"
NEEDS_3DS = "4000 0000 0000 3220"
DECLINED = "4000 0000 0000 0002"
TOLERANCE_S = 300


@pytest.fixture
def card(channels: dict[str, ChannelAdapter]) -> CardAdapter:
    adapter = channels["card"]
    assert isinstance(adapter, CardAdapter)
    return adapter


def adapter_with(
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    clock: Callable[[], int] | None = None,
    **card: str,
) -> CardAdapter:
    """The card adapter with other credentials (`secret_key=`, `webhook_secret=`) or clock."""
    settings = sandbox.settings()
    config = CardSettings.model_validate({**settings.card.model_dump(), **card})
    return CardAdapter(
        config,
        f"{sandbox.base_url}/card",
        client,
        tolerance_seconds=TOLERANCE_S,
        clock=clock or unix_now,
    )


def payment_request(order_id: str, inbox: Inbox, **changes: Any) -> CreatePaymentRequest:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "merchant_id": MERCHANT,
        "amount": AMOUNT,
        "currency": "USD",
        "description": "Two boxes of oolong",
        "notify_url": inbox.url,
    }
    return CreatePaymentRequest(**(fields | changes))


def refund_request(order_id: str, amount: int, currency: str = "USD") -> RefundRequest:
    return RefundRequest(
        refund_id=f"rf_{secrets.token_hex(6)}",
        order_id=order_id,
        amount=amount,
        currency=currency,
        reason="customer changed their mind",
    )


def auth(sandbox: RunningSandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.credentials['PAYSAGA_CARD__SECRET_KEY']}"}


def expiry() -> str:
    return f"12/{(date.today().year + 3) % 100:02d}"


async def notices(inbox: Inbox, count: int) -> list[ReceivedRequest]:
    return await wait_for(inbox.received, lambda got: len(got) >= count, f"{count} webhook(s)")


def parsed(card: CardAdapter, notice: ReceivedRequest) -> Notification:
    notification = card.parse_notification(notice.headers, notice.body)
    assert notification is not None
    return notification


async def intent_json(
    client: httpx.AsyncClient, sandbox: RunningSandbox, intent_id: str
) -> dict[str, Any]:
    response = await client.get(
        f"{sandbox.base_url}/card/v1/payment_intents/{intent_id}", headers=auth(sandbox)
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def submit_card(
    client: httpx.AsyncClient, sandbox: RunningSandbox, page_url: str, number: str
) -> tuple[httpx.Response, httpx.Response]:
    """The buyer opens the page and pays with `number`: the page, then the answer."""
    page = await client.get(page_url)
    assert page.status_code == 200, page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None
    answer = await client.post(
        sandbox.base_url + action[1], data={"number": number, "expiry": expiry(), "cvc": "123"}
    )
    return page, answer


async def answer_challenge(
    client: httpx.AsyncClient, sandbox: RunningSandbox, challenge: httpx.Response, outcome: str
) -> httpx.Response:
    action = re.search(r'<form method="post" action="([^"]+/authenticate)"', challenge.text)
    assert action is not None
    return await client.post(sandbox.base_url + action[1], data={"outcome": outcome})


# -- creating and querying payments ------------------------------------------------


async def test_a_new_payment_is_a_pending_intent_with_a_hosted_page(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await card.create_payment(payment_request(order_id, inbox))

    assert created.channel_payment_id.startswith("pi_")
    assert created.checkout_url == f"{sandbox.base_url}/card/pay/{created.channel_payment_id}"
    assert created.qr_payload is None
    state = await card.query_payment(order_id)
    assert (state.status, state.amount, state.currency, state.merchant_id) == (
        PaymentStatus.PENDING,
        AMOUNT,
        "USD",
        MERCHANT,
    )
    intent = await intent_json(client, sandbox, created.channel_payment_id)
    assert (intent["status"], intent["currency"], intent["last_payment_error"]) == (
        "requires_payment_method",
        "usd",
        None,
    )
    assert intent["metadata"] == {"order_id": order_id, "merchant_id": MERCHANT}


async def test_creating_twice_returns_the_same_intent_and_a_reused_key_must_match(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    first = await card.create_payment(payment_request(order_id, inbox))
    again = await card.create_payment(payment_request(order_id, inbox))
    assert again == first

    url = f"{sandbox.base_url}/card/v1/payment_intents"
    headers = {**auth(sandbox), "Idempotency-Key": f"{order_id}:create"}
    form = create_params(payment_request(order_id, inbox))  # what the adapter sent
    replayed = await client.post(url, data=form, headers=headers)
    reused = await client.post(url, data=form | {"amount": "1"}, headers=headers)

    assert (replayed.status_code, replayed.headers["idempotent-replayed"]) == (200, "true")
    assert replayed.json()["id"] == first.channel_payment_id
    assert reused.status_code == 400
    assert reused.json()["error"]["type"] == "idempotency_error"
    assert reused.json()["error"]["code"] == "idempotency_key_in_use"
    with pytest.raises(ChannelRejected) as refused:
        await card.create_payment(payment_request(order_id, inbox, amount=2000))
    assert refused.value.code == "idempotency_key_in_use" and not refused.value.retryable
    assert (await card.query_payment(order_id)).amount == AMOUNT


async def test_the_api_takes_form_fields_and_names_the_one_it_refuses(
    sandbox: RunningSandbox, client: httpx.AsyncClient, order_id: str, inbox: Inbox
) -> None:
    url = f"{sandbox.base_url}/card/v1/payment_intents"
    form = {
        "amount": "12.50",
        "currency": "usd",
        "metadata[order_id]": order_id,
        "metadata[merchant_id]": MERCHANT,
        "webhook_url": inbox.url,
    }

    bad_amount = await client.post(url, data=form, headers=auth(sandbox))
    unknown = await client.post(url, data=form | {"amount": "5", "tip": "1"}, headers=auth(sandbox))
    no_order = {k: v for k, v in form.items() if k != "metadata[order_id]"} | {"amount": "5"}
    missing = await client.post(url, data=no_order, headers=auth(sandbox))

    assert [r.status_code for r in (bad_amount, unknown, missing)] == [400, 400, 400]
    assert [
        (r.json()["error"]["code"], r.json()["error"]["param"])
        for r in (bad_amount, unknown, missing)
    ] == [
        ("parameter_invalid_integer", "amount"),
        ("parameter_unknown", "tip"),
        ("parameter_missing", "metadata[order_id]"),
    ]


async def test_an_unknown_order_or_refund_is_not_found(
    card: CardAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    with pytest.raises(PaymentNotFound):
        await card.query_payment(order_id)
    with pytest.raises(PaymentNotFound):
        await card.close_payment(order_id)
    with pytest.raises(PaymentNotFound):
        await card.refund(refund_request(order_id, 100))

    await card.create_payment(payment_request(order_id, inbox))
    await control.pay(order_id, notify="drop")
    with pytest.raises(PaymentNotFound):
        await card.query_refund(f"rf_{secrets.token_hex(6)}", order_id)


async def test_an_order_id_with_quotes_is_searched_for_exactly(
    card: CardAdapter, order_id: str, inbox: Inbox
) -> None:
    odd = f"{order_id}' OR 'x\\"
    await card.create_payment(payment_request(odd, inbox))

    assert (await card.query_payment(odd)).order_id == odd
    with pytest.raises(PaymentNotFound):
        await card.query_payment(order_id)


async def test_an_injected_fault_is_a_retryable_api_error_then_the_call_succeeds(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    control: Control,
    order_id: str,
    inbox: Inbox,
) -> None:
    await control.fail_api(order_id, times=2)

    with pytest.raises(ChannelUnavailable) as failed:
        await card.create_payment(payment_request(order_id, inbox))
    search = await client.get(
        f"{sandbox.base_url}/card/v1/payment_intents/search",
        params={"query": f"metadata['order_id']:'{order_id}'"},
        headers=auth(sandbox),
    )
    created = await card.create_payment(payment_request(order_id, inbox))

    assert failed.value.retryable and failed.value.code == "api_error"
    assert (search.status_code, search.json()["error"]["type"]) == (500, "api_error")
    assert (await card.query_payment(order_id)).channel_payment_id == created.channel_payment_id


async def test_a_wrong_secret_key_is_refused_for_good_and_never_echoed(
    sandbox: RunningSandbox, client: httpx.AsyncClient, order_id: str
) -> None:
    wrong_key = f"sk_test_{secrets.token_urlsafe(24)}"
    impostor = adapter_with(sandbox, client, secret_key=wrong_key)

    with pytest.raises(ChannelRejected) as refused:
        await impostor.query_payment(order_id)
    raw = await client.get(
        f"{sandbox.base_url}/card/v1/payment_intents/search",
        params={"query": f"metadata['order_id']:'{order_id}'"},
        headers={"Authorization": f"Bearer {wrong_key}"},
    )

    assert refused.value.code == "invalid_api_key" and "401" in refused.value.message
    assert not refused.value.retryable
    assert wrong_key not in f"{refused.value} {refused.value.message} {impostor!r}"
    assert raw.status_code == 401 and wrong_key not in raw.text
    assert raw.json()["error"]["type"] == "authentication_error"


# -- the hosted card page --------------------------------------------------------


async def test_a_card_that_succeeds_pays_and_a_signed_webhook_says_so(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await card.create_payment(payment_request(order_id, inbox))

    page, paid = await submit_card(client, sandbox, created.checkout_url, SUCCEEDS)

    assert "Two boxes of oolong" in page.text and "19.99 USD" in page.text
    assert paid.status_code == 200 and "Payment succeeded" in paid.text
    assert "Visa ending in 4242" in paid.text
    state = await card.query_payment(order_id)
    assert state.status is PaymentStatus.PAID and state.channel_txn_id
    (notice,) = await notices(inbox, 1)
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", notice.headers[SIGNATURE_HEADER.lower()])
    assert json.loads(notice.body)["type"] == "payment_intent.succeeded"
    notification = parsed(card, notice)
    assert notification.kind is NotificationKind.PAYMENT_SUCCEEDED
    assert notification.notification_id.startswith("evt_")
    assert (notification.order_id, notification.channel_payment_id) == (
        order_id,
        created.channel_payment_id,
    )
    assert (notification.amount, notification.currency, notification.merchant_id) == (
        AMOUNT,
        "USD",
        MERCHANT,
    )
    assert notification.channel_txn_id == state.channel_txn_id


async def test_a_card_that_asks_for_3d_secure_waits_then_pays_when_the_buyer_completes(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await card.create_payment(payment_request(order_id, inbox))

    _, challenge = await submit_card(client, sandbox, created.checkout_url, NEEDS_3DS)

    assert challenge.status_code == 200
    assert "Complete" in challenge.text and "Fail" in challenge.text
    assert (await card.query_payment(order_id)).status is PaymentStatus.PENDING
    intent = await intent_json(client, sandbox, created.channel_payment_id)
    assert intent["status"] == "requires_action"
    assert intent["next_action"]["redirect_to_url"]["url"] == created.checkout_url
    assert "Complete" in (await client.get(created.checkout_url)).text  # the page remembers

    completed = await answer_challenge(client, sandbox, challenge, "complete")

    assert completed.status_code == 200 and "Payment succeeded" in completed.text
    assert (await card.query_payment(order_id)).status is PaymentStatus.PAID
    (notice,) = await notices(inbox, 1)
    assert parsed(card, notice).kind is NotificationKind.PAYMENT_SUCCEEDED
    again = await answer_challenge(client, sandbox, challenge, "complete")
    assert again.status_code == 409  # a challenge is answered once


async def test_a_failed_3d_secure_challenge_declines_the_payment(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await card.create_payment(payment_request(order_id, inbox))
    _, challenge = await submit_card(client, sandbox, created.checkout_url, NEEDS_3DS)

    failed = await answer_challenge(client, sandbox, challenge, "fail")

    assert failed.status_code == 200 and "Payment failed" in failed.text
    assert (await card.query_payment(order_id)).status is PaymentStatus.DECLINED
    intent = await intent_json(client, sandbox, created.channel_payment_id)
    assert intent["status"] == "requires_payment_method"
    assert intent["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    (notice,) = await notices(inbox, 1)
    event = json.loads(notice.body)
    assert event["type"] == "payment_intent.payment_failed"
    assert event["data"]["object"]["last_payment_error"]["code"] == (
        "payment_intent_authentication_failure"
    )
    notification = parsed(card, notice)
    assert (notification.kind, notification.order_id, notification.channel_txn_id) == (
        NotificationKind.PAYMENT_DECLINED,
        order_id,
        None,
    )


async def test_a_declined_card_declines_the_payment_for_good(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await card.create_payment(payment_request(order_id, inbox))

    _, declined = await submit_card(client, sandbox, created.checkout_url, DECLINED)

    assert declined.status_code == 200 and "Your card was declined." in declined.text
    assert (await card.query_payment(order_id)).status is PaymentStatus.DECLINED
    intent = await intent_json(client, sandbox, created.channel_payment_id)
    assert intent["last_payment_error"]["code"] == "card_declined"
    (notice,) = await notices(inbox, 1)
    assert parsed(card, notice).kind is NotificationKind.PAYMENT_DECLINED
    retry = await client.post(
        f"{created.checkout_url}", data={"number": SUCCEEDS, "expiry": expiry(), "cvc": "123"}
    )
    assert retry.status_code == 409 and "Payment failed" in retry.text
    assert (await card.query_payment(order_id)).status is PaymentStatus.DECLINED


async def test_the_card_number_is_never_echoed_nor_logged(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    tmp_path_factory: pytest.TempPathFactory,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await card.create_payment(payment_request(order_id, inbox))
    typo = "4242 4242 4242 4241"  # fails the Luhn check

    wrong_number = await client.post(
        created.checkout_url, data={"number": typo, "expiry": expiry(), "cvc": "123"}
    )
    expired = await client.post(
        created.checkout_url, data={"number": SUCCEEDS, "expiry": "01/20", "cvc": "123"}
    )
    page, paid = await submit_card(client, sandbox, created.checkout_url, SUCCEEDS)

    assert wrong_number.status_code == 400 and "card number is incorrect" in wrong_number.text
    assert expired.status_code == 400 and "expired" in expired.text
    assert paid.status_code == 200
    numbers = [n.encode() for n in (SUCCEEDS, typo)] + [
        n.replace(" ", "").encode() for n in (SUCCEEDS, typo)
    ]
    (notice,) = await notices(inbox, 1)
    said = [r.content for r in (wrong_number, expired, page, paid)] + [notice.body]
    logs = list(tmp_path_factory.getbasetemp().rglob("sandbox.log"))
    assert logs, "the sandbox's log file"
    for text in said + [log.read_bytes() for log in logs]:
        assert not any(number in text for number in numbers)


async def test_everything_the_page_shows_is_escaped(
    card: CardAdapter, client: httpx.AsyncClient, order_id: str, inbox: Inbox
) -> None:
    request = payment_request(
        order_id, inbox, merchant_id="<b>shop</b>", description="<script>alert(1)</script>"
    )
    created = await card.create_payment(request)

    page = await client.get(created.checkout_url)

    assert "<script>alert" not in page.text and "<b>shop" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_the_control_api_still_pays_and_declines_card_payments(
    card: CardAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await card.create_payment(payment_request(order_id, inbox))
    other = f"{order_id}_b"
    await card.create_payment(payment_request(other, inbox))

    await control.pay(order_id)
    await control.decline(other)

    assert (await card.query_payment(order_id)).status is PaymentStatus.PAID
    assert (await card.query_payment(other)).status is PaymentStatus.DECLINED
    kinds = {parsed(card, n).kind for n in await notices(inbox, 2)}
    assert kinds == {NotificationKind.PAYMENT_SUCCEEDED, NotificationKind.PAYMENT_DECLINED}


# -- closing -------------------------------------------------------------------


async def test_closing_a_pending_payment_cancels_the_intent(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await card.create_payment(payment_request(order_id, inbox))

    result = await card.close_payment(order_id)
    again = await card.close_payment(order_id)

    assert result.closed and result.payment.status is PaymentStatus.CLOSED
    assert again.closed and again.payment.status is PaymentStatus.CLOSED
    assert (await intent_json(client, sandbox, created.channel_payment_id))["status"] == "canceled"
    page = await client.get(created.checkout_url)
    assert "This payment is closed" in page.text and "<form" not in page.text


async def test_closing_after_the_buyer_paid_reports_the_payment(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await card.create_payment(payment_request(order_id, inbox))
    await submit_card(client, sandbox, created.checkout_url, SUCCEEDS)

    result = await card.close_payment(order_id)
    cancel = await client.post(
        f"{sandbox.base_url}/card/v1/payment_intents/{created.channel_payment_id}/cancel",
        headers=auth(sandbox),
    )

    assert not result.closed
    assert result.payment.status is PaymentStatus.PAID and result.payment.channel_txn_id
    assert cancel.status_code == 400
    assert cancel.json()["error"]["code"] == "payment_intent_unexpected_state"


# -- refunds -------------------------------------------------------------------


async def test_a_partial_refund_succeeds_and_is_found_by_our_refund_id(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    control: Control,
    order_id: str,
    inbox: Inbox,
) -> None:
    created = await card.create_payment(payment_request(order_id, inbox))
    await control.pay(order_id, notify="drop")
    request = refund_request(order_id, 500)

    refund = await card.refund(request)
    again = await card.refund(request)
    found = await client.get(
        f"{sandbox.base_url}/card/v1/refunds/search",
        params={"query": f"metadata['refund_id']:'{request.refund_id}'"},
        headers=auth(sandbox),
    )

    assert (refund.status, refund.amount, refund.currency) == (RefundStatus.SUCCEEDED, 500, "USD")
    assert again == refund == await card.query_refund(request.refund_id, order_id)
    (wire_refund,) = found.json()["data"]
    assert wire_refund["id"].startswith("re_") and wire_refund["object"] == "refund"
    assert wire_refund["payment_intent"] == created.channel_payment_id
    assert wire_refund["metadata"] == {"refund_id": request.refund_id, "order_id": order_id}
    with pytest.raises(ChannelRejected) as too_much:
        await card.refund(refund_request(order_id, AMOUNT - 499))
    assert too_much.value.code == "amount_too_large"
    with pytest.raises(PaymentNotFound):
        await card.query_refund(request.refund_id, f"{order_id}_other")


async def test_a_pending_refund_completed_by_the_gateway_is_notified(
    card: CardAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    created = await card.create_payment(payment_request(order_id, inbox))
    await control.pay(order_id, notify="drop")
    await control.refund_behaviour(order_id, "pending")
    request = refund_request(order_id, 700)

    assert (await card.refund(request)).status is RefundStatus.PENDING
    await control.complete_refund(request.refund_id)

    assert (await card.query_refund(request.refund_id, order_id)).status is RefundStatus.SUCCEEDED
    (notice,) = await notices(inbox, 1)
    assert json.loads(notice.body)["type"] == "refund.updated"
    notification = parsed(card, notice)
    assert (notification.kind, notification.refund_id, notification.order_id) == (
        NotificationKind.REFUND_SUCCEEDED,
        request.refund_id,
        order_id,
    )
    assert (notification.amount, notification.currency) == (700, "USD")
    assert notification.channel_payment_id == created.channel_payment_id
    assert notification.merchant_id is None  # a refund carries only our refund metadata


async def test_a_refused_refund_fails_and_is_notified(
    card: CardAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await card.create_payment(payment_request(order_id, inbox))
    await control.pay(order_id, notify="drop")
    await control.refund_behaviour(order_id, "fail")
    request = refund_request(order_id, AMOUNT)

    refund = await card.refund(request)

    assert (refund.status, refund.failure_reason) == (RefundStatus.FAILED, "declined")
    (notice,) = await notices(inbox, 1)
    assert parsed(card, notice).kind is NotificationKind.REFUND_FAILED


async def test_a_refund_in_another_currency_is_refused_without_calling_out(
    card: CardAdapter, control: Control, order_id: str, inbox: Inbox
) -> None:
    await card.create_payment(payment_request(order_id, inbox))
    await control.pay(order_id, notify="drop")
    request = refund_request(order_id, 100, currency="EUR")

    with pytest.raises(ChannelRejected) as refused:
        await card.refund(request)

    assert refused.value.code == "currency_mismatch"
    with pytest.raises(PaymentNotFound):
        await card.query_refund(request.refund_id, order_id)


# -- webhooks --------------------------------------------------------------------


async def a_genuine_webhook(
    card: CardAdapter, control: Control, order_id: str, inbox: Inbox
) -> ReceivedRequest:
    await card.create_payment(payment_request(order_id, inbox))
    await control.pay(order_id)
    (notice,) = await notices(inbox, 1)
    return notice


def stopped_at(unix_seconds: int) -> Callable[[], int]:
    return lambda: unix_seconds


async def test_a_webhook_is_refused_when_anything_about_its_signature_is_wrong(
    card: CardAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    control: Control,
    order_id: str,
    inbox: Inbox,
) -> None:
    notice = await a_genuine_webhook(card, control, order_id, inbox)
    header = SIGNATURE_HEADER.lower()
    signed_at = int(notice.headers[header].split(",")[0].removeprefix("t="))
    flipped = bytearray(notice.body)
    flipped[len(flipped) // 2] ^= 0x01
    other_secret = adapter_with(sandbox, client, webhook_secret=f"whsec_{secrets.token_hex(12)}")
    late = adapter_with(sandbox, client, clock=stopped_at(signed_at + TOLERANCE_S + 1))
    early = adapter_with(sandbox, client, clock=stopped_at(signed_at - TOLERANCE_S - 1))
    unsigned = {k: v for k, v in notice.headers.items() if k != header}

    refusals: list[Callable[[], object]] = [
        lambda: card.parse_notification(notice.headers, bytes(flipped)),
        lambda: other_secret.parse_notification(notice.headers, notice.body),
        lambda: late.parse_notification(notice.headers, notice.body),
        lambda: early.parse_notification(notice.headers, notice.body),
        lambda: card.parse_notification(unsigned, notice.body),
        lambda: card.parse_notification(unsigned | {header: "t=abc,v1=xyz"}, notice.body),
        lambda: card.parse_notification(unsigned | {header: "garbage"}, notice.body),
    ]
    for refusal in refusals:
        with pytest.raises(NotificationSignatureError):
            refusal()
    at_the_edge = adapter_with(sandbox, client, clock=stopped_at(signed_at + TOLERANCE_S))
    assert parsed(at_the_edge, notice).order_id == order_id


def test_a_webhook_signed_with_the_shared_helper_verifies(
    sandbox: RunningSandbox, client: httpx.AsyncClient
) -> None:
    """A known answer: an event written by hand, signed by `channels.signature.sign`."""
    body = (
        b'{"id":"evt_known","object":"event","type":"payment_intent.succeeded",'
        b'"created":1700000000,"data":{"object":{"id":"pi_known","object":"payment_intent",'
        b'"amount":1999,"currency":"usd","status":"succeeded",'
        b'"metadata":{"order_id":"ord_known","merchant_id":"m_known"},'
        b'"latest_charge":"ch_known","last_payment_error":null,'
        b'"hosted_url":"https://pay.example/pi_known","next_action":null,'
        b'"livemode":false}}}'
    )
    secret = sandbox.credentials["PAYSAGA_CARD__WEBHOOK_SECRET"].encode()
    adapter = adapter_with(sandbox, client, clock=stopped_at(1_700_000_010))

    notification = adapter.parse_notification(
        {SIGNATURE_HEADER: sign(secret, body, 1_700_000_000)}, body
    )

    assert notification == Notification(
        notification_id="evt_known",
        kind=NotificationKind.PAYMENT_SUCCEEDED,
        order_id="ord_known",
        channel_payment_id="pi_known",
        channel_txn_id="ch_known",
        amount=1999,
        currency="USD",
        merchant_id="m_known",
        paid_at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),  # "created": 1700000000
    )


def test_a_genuine_webhook_of_another_type_is_acknowledged_and_ignored(
    sandbox: RunningSandbox, client: httpx.AsyncClient
) -> None:
    body = (
        b'{"id":"evt_other","object":"event","type":"charge.dispute.created","data":{"object":{}}}'
    )
    secret = sandbox.credentials["PAYSAGA_CARD__WEBHOOK_SECRET"].encode()
    now = int(time.time())
    adapter = adapter_with(sandbox, client)

    assert adapter.parse_notification({SIGNATURE_HEADER: sign(secret, body, now)}, body) is None


def test_the_acknowledgement_is_received_true_and_a_rejection_carries_our_error(
    card: CardAdapter,
) -> None:
    error = {"error": {"type": "invalid_request_error", "code": "invalid_signature"}}

    ack = card.acknowledgement()
    rejection = card.rejection(400, error)

    assert (ack.status_code, json.loads(ack.body), ack.media_type) == (
        200,
        {"received": True},
        "application/json",
    )
    assert (rejection.status_code, json.loads(rejection.body)) == (400, error)


@pytest.fixture(scope="module")
def fast_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A sandbox of this module's own on a tiny time scale: ~3 channel days in ~1.3 s."""
    running = _new_sandbox(time_scale=0.000005)
    log_path = tmp_path_factory.mktemp("card_fast") / "sandbox.log"
    process = _start_sandbox(running, "", log_path)
    try:
        yield running
    finally:
        _stop_sandbox(process)


async def test_an_unacknowledged_webhook_is_retried_on_stripes_schedule(
    fast_sandbox: RunningSandbox, client: httpx.AsyncClient, receiver: Receiver, order_id: str
) -> None:
    card = build_channels(fast_sandbox.settings(), client)["card"]
    control = Control(client, fast_sandbox.base_url)
    inbox = receiver.inbox(fail_first=100)
    await card.create_payment(payment_request(order_id, inbox))

    await control.pay(order_id)

    attempts = await wait_for(
        lambda: control.deliveries(order_id), lambda found: len(found) >= 13, "13 attempts"
    )
    waits = [60.0 * 2**n for n in range(12)]
    assert [a["waited_s"] for a in attempts] == [0.0, *waits]
    assert [a["attempt"] for a in attempts] == list(range(1, 14))
    assert not any(a["accepted"] for a in attempts)
    assert len({a["event_id"] for a in attempts}) == 1
    planned = 0.0
    for previous, attempt in zip([{"at_s": 0.0}, *attempts], attempts, strict=False):
        planned += attempt["waited_s"]
        assert attempt["at_s"] >= max(planned, previous["at_s"])
    # Every attempt verifies, and all carry the one event.
    notices = await inbox.received()
    assert len(notices) == 13
    assert len({parsed_id(card, n) for n in notices}) == 1


def parsed_id(card: ChannelAdapter, notice: ReceivedRequest) -> str:
    notification = card.parse_notification(notice.headers, notice.body)
    assert notification is not None
    return notification.notification_id
