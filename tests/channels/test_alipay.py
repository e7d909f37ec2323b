"""The Alipay adapter against the sandbox's Alipay gateway, over HTTP with RSA2 both ways.

Every call is signed by the adapter with the app's key and checked by the
sandbox with the key "uploaded" to it; every answer and notification is signed
by the sandbox with "Alipay's" key and checked by the adapter. Tampering with
any of them is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import Session, select
from temporalio.client import Client

from channels.alipay import protocol as gateway
from channels.alipay.adapter import AlipayAdapter
from channels.alipay.notification import parse_notification
from channels.alipay.signing import (
    NOTIFY_EXCLUDED,
    REQUEST_EXCLUDED,
    canonical,
    sign_notification,
    verify_notification,
)
from channels.base import (
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
    NotificationMismatch,
    NotificationSignatureError,
    PaymentNotFound,
)
from channels.rsa2 import (
    load_private_key,
    load_public_key,
    new_private_key,
    private_key_text,
    public_key_text,
    sign,
)
from db.tables import ChannelNotification
from domain.keys import order_workflow_id
from tests.channel_messages import message, payment_event
from tests.channels.conftest import (
    Control,
    Inbox,
    Receiver,
    RunningSandbox,
    _new_sandbox,
    _start_sandbox,
    _stop_sandbox,
)
from tests.conftest import System
from tests.support import create_merchant, create_order, wait_for, wait_status

MERCHANT = "mch_tea_shop"
# Made with python-alipay-sdk 3.4.0 and test-only keys: see the file's _comment.
SDK_VECTORS = json.loads((Path(__file__).parent / "vectors" / "alipay_sdk.json").read_text())


@pytest.fixture
def alipay(sandbox: RunningSandbox, client: httpx.AsyncClient) -> AlipayAdapter:
    return _adapter(sandbox, client)


def _adapter(sandbox: RunningSandbox, client: httpx.AsyncClient, **config: Any) -> AlipayAdapter:
    settings = sandbox.settings()
    alipay = settings.alipay.model_copy(update=config)
    return AlipayAdapter(alipay, f"{sandbox.base_url}/alipay/gateway.do", client)


def _payment(order_id: str, inbox: Inbox, amount: int = 8888) -> CreatePaymentRequest:
    return CreatePaymentRequest(
        order_id=order_id,
        merchant_id=MERCHANT,
        amount=amount,
        currency="CNY",
        description="Oolong tea",
        notify_url=inbox.url,
    )


def _refund(order_id: str, amount: int, refund_id: str | None = None) -> RefundRequest:
    return RefundRequest(
        refund_id=refund_id or f"rf_{secrets.token_hex(6)}",
        order_id=order_id,
        amount=amount,
        currency="CNY",
        reason="broken cup",
    )


async def _notifications(inbox: Inbox, count: int = 1) -> list[Any]:
    return await wait_for(inbox.received, lambda got: len(got) >= count, "alipay notifications")


# -- payments ------------------------------------------------------------------


async def test_a_precreated_trade_waits_for_the_buyer_with_a_qr_code_and_a_page(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox, client: httpx.AsyncClient
) -> None:
    created = await alipay.create_payment(_payment(order_id, inbox))
    assert created.qr_payload and created.channel_payment_id == order_id
    state = await alipay.query_payment(order_id)
    assert (state.status, state.amount, state.currency) == (PaymentStatus.PENDING, 8888, "CNY")
    # The web checkout is a signed alipay.trade.page.pay that lands on the cashier.
    page = await client.get(created.checkout_url, follow_redirects=True)
    assert page.status_code == 200 and "88.88" in page.text
    tampered = created.checkout_url.replace(
        "total_amount%22%3A%2288.88", "total_amount%22%3A%221.00"
    )
    assert tampered != created.checkout_url
    assert (await client.get(tampered)).status_code == 400


async def test_the_paid_notification_is_signed_and_reads_as_our_payment(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox, control: Control
) -> None:
    await alipay.create_payment(_payment(order_id, inbox))
    await control.pay(order_id)
    [received] = await _notifications(inbox)
    assert received.headers["content-type"].startswith("application/x-www-form-urlencoded")
    notification = alipay.parse_notification(received.headers, received.body)
    assert notification is not None
    assert notification.kind == NotificationKind.PAYMENT_SUCCEEDED
    assert (notification.order_id, notification.amount) == (order_id, 8888)
    assert notification.merchant_id == MERCHANT
    state = await alipay.query_payment(order_id)
    assert state.status == PaymentStatus.PAID
    assert state.channel_txn_id == notification.channel_txn_id
    assert state.merchant_id is None  # Alipay's query does not echo passback_params


async def test_only_exactly_success_stops_the_retries(
    alipay: AlipayAdapter, order_id: str, receiver: Any, control: Control
) -> None:
    inbox = receiver.inbox(fail_first=2)
    await alipay.create_payment(_payment(order_id, inbox))
    await control.pay(order_id)
    deliveries = await wait_for(
        lambda: control.deliveries(order_id), lambda d: len(d) >= 3, "three attempts"
    )
    assert [(d["status_code"], d["accepted"]) for d in deliveries] == [
        (500, False),
        (500, False),
        (200, True),
    ]
    assert [d["waited_s"] for d in deliveries] == [0, 240, 600]
    assert alipay.acknowledgement().body == "success"
    assert alipay.rejection(400, {"error": {}}).body != "success"


async def test_closing_a_waiting_trade_closes_it_and_a_paid_one_stays_paid(
    alipay: AlipayAdapter, inbox: Inbox, control: Control
) -> None:
    waiting, paid = f"ord_{secrets.token_hex(6)}", f"ord_{secrets.token_hex(6)}"
    await alipay.create_payment(_payment(waiting, inbox))
    await alipay.create_payment(_payment(paid, inbox))
    await control.pay(paid)
    closed = await alipay.close_payment(waiting)
    assert closed.closed and closed.payment.status == PaymentStatus.CLOSED
    refused = await alipay.close_payment(paid)
    assert not refused.closed and refused.payment.status == PaymentStatus.PAID
    with pytest.raises(httpx.HTTPStatusError):
        await control.pay(waiting)  # the channel no longer takes the buyer's money


async def test_a_declined_trade_is_notified_as_closed(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox, control: Control
) -> None:
    await alipay.create_payment(_payment(order_id, inbox))
    await control.decline(order_id)
    [received] = await _notifications(inbox)
    notification = alipay.parse_notification(received.headers, received.body)
    assert notification is not None and notification.kind == NotificationKind.PAYMENT_DECLINED
    assert (await alipay.query_payment(order_id)).status == PaymentStatus.CLOSED


async def test_an_unknown_trade_is_not_found(alipay: AlipayAdapter) -> None:
    with pytest.raises(PaymentNotFound) as raised:
        await alipay.query_payment(f"ord_{secrets.token_hex(6)}")
    assert raised.value.code == "ACQ.TRADE_NOT_EXIST"


async def test_the_same_order_with_another_amount_is_refused(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox
) -> None:
    await alipay.create_payment(_payment(order_id, inbox))
    again = await alipay.create_payment(_payment(order_id, inbox))  # a retry is harmless
    assert again.channel_payment_id == order_id
    with pytest.raises(ChannelRejected) as raised:
        await alipay.create_payment(_payment(order_id, inbox, amount=100))
    assert raised.value.code == "ACQ.CONTEXT_INCONSISTENT"


async def test_alipay_takes_its_currencies_only_and_amounts_in_its_range(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox
) -> None:
    request = _payment(order_id, inbox)
    with pytest.raises(ChannelRejected, match="CNY"):  # KWD is on no cross-border list
        await alipay.create_payment(request.model_copy(update={"currency": "KWD"}))
    with pytest.raises(ChannelRejected):
        await alipay.create_payment(request.model_copy(update={"amount": 100_000_000_01}))
    with pytest.raises(PaymentNotFound):
        await alipay.query_payment(order_id)  # nothing reached the channel


async def test_injected_faults_are_unavailable_then_the_call_succeeds(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox, control: Control
) -> None:
    await alipay.create_payment(_payment(order_id, inbox))
    await control.fail_api(order_id, 1)
    with pytest.raises(ChannelUnavailable):
        await alipay.query_payment(order_id)
    assert (await alipay.query_payment(order_id)).status == PaymentStatus.PENDING


# -- refunds -------------------------------------------------------------------


async def test_partial_refunds_need_their_own_request_numbers_and_are_queried_by_them(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox, control: Control
) -> None:
    await alipay.create_payment(_payment(order_id, inbox))
    await control.pay(order_id)
    first = await alipay.refund(_refund(order_id, 1000))
    assert (first.status, first.amount) == (RefundStatus.SUCCEEDED, 1000)
    repeat = await alipay.refund(_refund(order_id, 1000, first.refund_id))
    assert repeat.status == RefundStatus.SUCCEEDED  # the same out_request_no: one refund
    queried = await alipay.query_refund(first.refund_id, order_id)
    assert (queried.status, queried.amount) == (RefundStatus.SUCCEEDED, 1000)
    with pytest.raises(ChannelRejected) as raised:
        await alipay.refund(_refund(order_id, 7889))  # 10.00 + 78.89 > 88.88
    assert raised.value.code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    with pytest.raises(PaymentNotFound):
        await alipay.query_refund("rf_never", order_id)
    with pytest.raises(ChannelRejected):
        await alipay.refund(_refund(order_id, 10, refund_id="r" * 65))


async def test_a_pending_refund_is_notified_when_it_is_made(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox, control: Control
) -> None:
    await alipay.create_payment(_payment(order_id, inbox))
    await control.pay(order_id)
    await control.refund_behaviour(order_id, "pending")
    refund = await alipay.refund(_refund(order_id, 500))
    assert refund.status == RefundStatus.PENDING
    await control.complete_refund(refund.refund_id)
    received = (await _notifications(inbox, 2))[1]
    notification = alipay.parse_notification(received.headers, received.body)
    assert notification is not None and notification.kind == NotificationKind.REFUND_SUCCEEDED
    assert (notification.refund_id, notification.amount) == (refund.refund_id, 500)
    assert (await alipay.query_refund(refund.refund_id, order_id)).status == RefundStatus.SUCCEEDED


async def test_a_refused_refund_is_rejected_with_alipay_s_reason(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox, control: Control
) -> None:
    await alipay.create_payment(_payment(order_id, inbox))
    await control.pay(order_id)
    await control.refund_behaviour(order_id, "fail")
    with pytest.raises(ChannelRejected) as raised:
        await alipay.refund(_refund(order_id, 500))
    assert raised.value.code == "ACQ.SELLER_BALANCE_NOT_ENOUGH"


# -- the signatures, both ways ---------------------------------------------------


async def test_a_request_signed_with_another_key_is_refused_by_the_gateway(
    sandbox: RunningSandbox, client: httpx.AsyncClient, order_id: str
) -> None:
    impostor = _adapter(
        sandbox, client, app_private_key=SecretStr(private_key_text(new_private_key()))
    )
    with pytest.raises(ChannelRejected) as raised:
        await impostor.query_payment(order_id)
    assert raised.value.code == "isv.invalid-signature"
    other_app = _adapter(sandbox, client, app_id="2021000000000000")
    with pytest.raises(ChannelRejected) as raised:
        await other_app.query_payment(order_id)
    assert raised.value.code == "isv.invalid-app-id"


async def test_a_request_tampered_after_signing_is_refused(
    alipay: AlipayAdapter, sandbox: RunningSandbox, client: httpx.AsyncClient, order_id: str
) -> None:
    settings = sandbox.settings()
    key = load_private_key(settings.alipay.app_private_key.get_secret_value())
    params = gateway.signed_request(
        app_id=settings.alipay.app_id,
        method=gateway.QUERY,
        biz_content={"out_trade_no": order_id},
        key=key,
        now=datetime.now(UTC),
    )
    url = f"{sandbox.base_url}/alipay/gateway.do"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    genuine = await client.post(url, content=urlencode(params), headers=form)
    assert (
        json.loads(genuine.text)["alipay_trade_query_response"]["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    )
    for field, value in [
        ("biz_content", '{"out_trade_no":"x"}'),
        ("sign", ""),
        ("timestamp", "2026-01-01 00:00:00"),
    ]:
        forged = {**params, field: value}
        answer = await client.post(url, content=urlencode(forged), headers=form)
        node = json.loads(answer.text)["alipay_trade_query_response"]
        assert node["sub_code"] == "isv.invalid-signature", field


async def test_an_answer_signed_with_another_key_is_never_believed(
    sandbox: RunningSandbox, client: httpx.AsyncClient, order_id: str, inbox: Inbox
) -> None:
    other = public_key_text(new_private_key().public_key())
    fooled = _adapter(sandbox, client, alipay_public_key=other)
    with pytest.raises(ChannelUnavailable) as raised:
        await fooled.create_payment(_payment(order_id, inbox))
    assert raised.value.code == "invalid_signature"


def test_a_signed_answer_verifies_on_its_exact_text_only() -> None:
    key = new_private_key()
    node = {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": "o1",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "1.00",
        "trade_no": "t",
    }
    text = gateway.signed_response(gateway.QUERY, node, key)
    assert gateway.read_response(gateway.QUERY, text.encode(), key.public_key()) == node
    spaced = text.replace('"msg":"Success"', '"msg": "Success"')
    with pytest.raises(ChannelUnavailable):
        gateway.read_response(gateway.QUERY, spaced.encode(), key.public_key())
    unsigned = text[: text.index(',"sign"')] + "}"
    with pytest.raises(ChannelUnavailable):
        gateway.read_response(gateway.QUERY, unsigned.encode(), key.public_key())


async def test_a_tampered_notification_is_refused(
    alipay: AlipayAdapter, sandbox: RunningSandbox, order_id: str, inbox: Inbox, control: Control
) -> None:
    await alipay.create_payment(_payment(order_id, inbox))
    await control.pay(order_id)
    [received] = await _notifications(inbox)
    fields = dict(parse_qsl(received.body.decode()))
    settings = sandbox.settings()
    assert settings.sandbox_keys is not None
    alipay_key = load_private_key(settings.sandbox_keys.alipay_private_key.get_secret_value())

    def resigned(**changes: str) -> bytes:
        changed = {**fields, **changes}
        changed["sign"] = sign(canonical(changed, NOTIFY_EXCLUDED), alipay_key)
        return urlencode(changed).encode()

    forged_amount = urlencode({**fields, "total_amount": "0.01"}).encode()
    without_sign = urlencode({k: v for k, v in fields.items() if k != "sign"}).encode()
    other_key = {**fields, "sign": sign(canonical(fields, NOTIFY_EXCLUDED), new_private_key())}
    one_byte = received.body.replace(b"out_trade_no=ord_", b"out_trade_no=orc_")
    for body in (forged_amount, without_sign, urlencode(other_key).encode(), one_byte, b""):
        with pytest.raises(NotificationSignatureError):
            alipay.parse_notification(received.headers, body)
    with pytest.raises(NotificationMismatch):
        alipay.parse_notification({}, resigned(app_id="2021000000000000"))
    with pytest.raises(NotificationMismatch):
        alipay.parse_notification({}, resigned(seller_id="2088000000000000"))
    with pytest.raises(NotificationFormatError):
        alipay.parse_notification({}, resigned(total_amount="88.888"))
    assert alipay.parse_notification({}, resigned(trade_status="WAIT_BUYER_PAY")) is None
    # The genuine message still reads: the checks above changed nothing.
    assert alipay.parse_notification(received.headers, received.body) is not None


def test_gateway_timestamps_are_beijing_time() -> None:
    moment = datetime(2026, 11, 21, 16, 30, 5, tzinfo=UTC)
    assert gateway.gateway_timestamp(moment) == "2026-11-22 00:30:05"
    assert gateway.parse_gateway_timestamp("2026-11-22 00:30:05") == moment
    assert gateway.parse_gateway_timestamp("2026-11-22 00:30:05") - moment == timedelta(0)


# -- Alipay's retry schedule, on a compressed clock --------------------------------

ALIPAY_SCHEDULE = [0, 240, 600, 600, 3600, 7200, 21600, 54000]  # 4m 10m 10m 1h 2h 6h 15h


@pytest.fixture(scope="module")
def compressed_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """A sandbox of its own whose clock runs 50,000 times faster: 25 hours in under 2 s."""
    running = _new_sandbox(time_scale=0.00002)
    process = _start_sandbox(running, "", tmp_path_factory.mktemp("alipay") / "sandbox.log")
    try:
        yield running
    finally:
        _stop_sandbox(process)


async def test_an_unanswered_notification_follows_alipay_s_schedule_then_stops(
    compressed_sandbox: RunningSandbox, client: httpx.AsyncClient, receiver: Receiver, order_id: str
) -> None:
    alipay = _adapter(compressed_sandbox, client)
    inbox = receiver.inbox(fail_first=1000)
    control = Control(client, compressed_sandbox.base_url)
    await alipay.create_payment(_payment(order_id, inbox))
    await control.pay(order_id)
    deliveries = await wait_for(
        lambda: control.deliveries(order_id), lambda d: len(d) >= 8, "eight attempts", 30
    )
    assert [d["waited_s"] for d in deliveries] == ALIPAY_SCHEDULE
    assert not any(d["accepted"] for d in deliveries)
    planned = list(itertools.accumulate(ALIPAY_SCHEDULE))
    measured = [d["at_s"] for d in deliveries]
    assert measured == sorted(measured)
    assert all(at >= due for at, due in zip(measured, planned, strict=True))
    # Then Alipay gives up: nothing more arrives however long one waits (here: 15 h more).
    await asyncio.sleep(54000 * 0.00002)  # a span of the channel's clock, not a wait for state
    assert len(await control.deliveries(order_id)) == 8


# -- what Alipay's SDKs send and sign --------------------------------------------


def test_a_notification_with_an_empty_field_verifies_as_alipay_s_sdk_signs_it() -> None:
    """python-alipay-sdk (and Alipay) sign every field, `body=` included."""
    vector = SDK_VECTORS["notify"]
    form: dict[str, str] = vector["form"]
    alipay_key = load_public_key(SDK_VECTORS["alipay_public_key_pem"])
    assert form["body"] == ""
    assert canonical(form, NOTIFY_EXCLUDED, keep_empty=True) == vector["canonical"]
    assert verify_notification(form, alipay_key)
    notification = parse_notification(
        urlencode(form).encode(),
        alipay_key=alipay_key,
        app_id=form["app_id"],
        seller_id=form["seller_id"],
    )
    assert notification is not None and notification.amount == 8888
    assert notification.merchant_id == MERCHANT
    # The empty field is signed: it cannot be given a value, nor can one be added.
    assert not verify_notification({**form, "body": "x"}, alipay_key)
    assert not verify_notification({**form, "total_amount": "0.01"}, alipay_key)


def test_a_notification_signed_without_its_empty_fields_verifies_too() -> None:
    """Alipay's current Java SDK (`getSignCheckContentV1`) leaves empty fields out."""
    key = new_private_key()
    fields = {"notify_id": "n1", "out_trade_no": "ord_1", "body": "", "total_amount": "1.00"}
    java_style = {
        **fields,
        "sign_type": "RSA2",
        "sign": sign(canonical(fields, NOTIFY_EXCLUDED), key),
    }
    assert verify_notification(java_style, key.public_key())
    assert verify_notification(sign_notification(fields, key), key.public_key())
    assert not verify_notification({**java_style, "body": "x"}, key.public_key())


def _sdk_style_query(sandbox: RunningSandbox, method: str, biz: dict[str, Any]) -> str:
    """A call as python-alipay-sdk makes it: every parameter signed, empties kept, sent as
    the query string of a GET (`quote_plus`), without `format`."""
    settings = sandbox.settings()
    key = load_private_key(settings.alipay.app_private_key.get_secret_value())
    params = {
        "app_id": settings.alipay.app_id,
        "method": method,
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": gateway.gateway_timestamp(datetime.now(UTC)),
        "version": "1.0",
        "biz_content": json.dumps(biz, separators=(",", ":")),
        "app_auth_token": "",
    }
    params["sign"] = sign(canonical(params, REQUEST_EXCLUDED, keep_empty=True), key)
    return "&".join(f"{k}={quote_plus(v)}" for k, v in params.items())


async def test_the_gateway_answers_a_signed_get_as_alipay_s_sdk_sends_it(
    alipay: AlipayAdapter,
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    order_id: str,
    inbox: Inbox,
) -> None:
    await alipay.create_payment(_payment(order_id, inbox))
    url = f"{sandbox.base_url}/alipay/gateway.do"
    query = _sdk_style_query(sandbox, gateway.QUERY, {"out_trade_no": order_id})
    answer = await client.get(f"{url}?{query}")
    assert answer.status_code == 200
    alipay_key = load_public_key(sandbox.settings().alipay.alipay_public_key)
    node = gateway.read_response(gateway.QUERY, answer.content, alipay_key)
    assert (node["out_trade_no"], node["trade_status"]) == (order_id, "WAIT_BUYER_PAY")
    # The same checks as a POST: a GET altered after signing is refused.
    forged = query.replace(quote_plus(order_id), quote_plus(f"{order_id}x"))
    refused = json.loads((await client.get(f"{url}?{forged}")).text)
    assert refused["alipay_trade_query_response"]["sub_code"] == "isv.invalid-signature"


async def test_the_gateway_refuses_an_out_trade_no_alipay_does_not_allow(
    sandbox: RunningSandbox, client: httpx.AsyncClient, order_id: str, inbox: Inbox
) -> None:
    settings = sandbox.settings()
    key = load_private_key(settings.alipay.app_private_key.get_secret_value())
    url = f"{sandbox.base_url}/alipay/gateway.do"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answers = {}
    for out_trade_no in (f"{order_id}-2", f"{order_id}__2", "x" * 65):
        biz = {"out_trade_no": out_trade_no, "total_amount": "1.00", "subject": "tea"}
        params = gateway.signed_request(
            app_id=settings.alipay.app_id,
            method=gateway.PRECREATE,
            biz_content=biz,
            key=key,
            now=datetime.now(UTC),
            notify_url=inbox.url,
        )
        answer = await client.post(url, content=urlencode(params), headers=form)
        node = json.loads(answer.text)["alipay_trade_precreate_response"]
        answers[out_trade_no] = node.get("sub_code", node["code"])
    assert answers == {
        f"{order_id}-2": "ACQ.INVALID_PARAMETER",
        f"{order_id}__2": "10000",
        "x" * 65: "ACQ.INVALID_PARAMETER",
    }


# -- our notify endpoint: a notify_id is taken once ---------------------------------


async def test_a_notify_id_taken_once_is_acknowledged_again_but_never_acted_on_again(
    api: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    """Alipay's notifications carry no timestamp: a retry, a captured one replayed, or the
    same notify_id with other content after the order moved on get `success` (so Alipay
    stops) and nothing more."""
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel="alipay", auto_complete_seconds=3600)
    event = payment_event(order)
    genuine = message(system.env, "alipay", event)
    other_txn = event.data.model_copy(update={"txn_id": f"txn_test_{secrets.token_hex(8)}"})
    same_id = message(system.env, "alipay", event.model_copy(update={"data": other_txn}))
    path = "/v1/channels/alipay/notify"

    taken = await api.post(path, content=genuine.body, headers=dict(genuine.headers))
    assert (taken.status_code, taken.text) == (200, "success")
    await wait_status(api, order["id"], "awaiting_receipt")
    for wire in (genuine, genuine, same_id):
        again = await api.post(path, content=wire.body, headers=dict(wire.headers))
        assert (again.status_code, again.text) == (200, "success")

    history = await temporal.get_workflow_handle(order_workflow_id(order["id"])).fetch_history()
    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert signals.count("payment_notification") == 1
    with Session(system.engine) as session:
        rows = session.exec(
            select(ChannelNotification).where(ChannelNotification.order_id == order["id"])
        ).all()
    assert [row.raw_body for row in rows] == [genuine.body.decode()]
