"""Merchant webhooks and buyer notifications, end to end: a merchant's endpoint is a real
HTTP server in this process, and everything else runs for real (API, worker, Temporal,
sandbox channel, database). Retries run on the fast schedule of `tests/conftest.py`.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.service import RPCError

from db.tables import PartyNotification, WebhookEvent
from domain.errors import WebhookSignatureInvalid
from domain.keys import webhook_event_id, webhook_workflow_id
from domain.webhook_signing import verify
from tests.conftest import System
from tests.identities import create_api_key
from tests.receiver import Inbox, ReceivedRequest, Receiver
from tests.support import create_order, merchant_body, pay, wait_for, wait_status


async def _merchant(api: httpx.AsyncClient, inbox: Inbox | None) -> tuple[str, str]:
    """A merchant with its endpoint at `inbox` (or none); returns its id and its secret."""
    body: dict[str, Any] = merchant_body(name="Tea shop")
    if inbox is not None:
        body["webhook_url"] = inbox.url
    response = await api.post("/v1/merchants", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["webhook_url"] == (inbox.url if inbox else None)
    assert created["webhook_secret"].startswith("whsec_")
    return created["id"], created["webhook_secret"]


async def _deliveries(inbox: Inbox, count: int, what: str) -> list[ReceivedRequest]:
    return await wait_for(inbox.received, lambda got: len(got) >= count, what)


def _verified(secret: str, delivery: ReceivedRequest) -> dict[str, Any]:
    """What a merchant does: check the signature over the raw body, then parse it."""
    verify(secret, delivery.headers.get("paysaga-signature"), delivery.body, now=int(time.time()))
    event: dict[str, Any] = json.loads(delivery.body)
    assert delivery.headers["paysaga-event-id"] == event["id"]
    assert delivery.headers["paysaga-event-type"] == event["type"]
    return event


def _event_row(system: System, event_id: str) -> WebhookEvent | None:
    with Session(system.engine) as session:
        return session.get(WebhookEvent, event_id)


def _buyer_notifications(system: System, order_id: str) -> list[str]:
    with Session(system.engine) as session:
        rows = session.exec(
            select(PartyNotification).where(
                PartyNotification.order_id == order_id, PartyNotification.recipient == "buyer"
            )
        ).all()
        return sorted(row.event for row in rows)


async def _delivery_finished(temporal: Client, event_id: str) -> None:
    """The event's delivery workflow has ended: nothing more will be sent for it."""
    handle = temporal.get_workflow_handle(webhook_workflow_id(event_id))
    await handle.result()


async def test_a_paid_order_is_signed_to_the_merchant_and_told_to_the_buyer(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    receiver: Receiver,
) -> None:
    inbox = receiver.inbox()
    merchant_id, secret = await _merchant(api, inbox)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")

    [delivery] = await _deliveries(inbox, 1, "order.paid")
    event = _verified(secret, delivery)
    assert event["id"] == webhook_event_id(order["id"], "order.paid")
    assert event["type"] == "order.paid"
    data = event["data"]
    assert (data["id"], data["merchant_id"], data["currency"]) == (order["id"], merchant_id, "CNY")
    assert data["amounts"] == {"total": 7498, "discount": 0, "payable": 7498}
    assert data["status"] == "awaiting_receipt"
    assert b"whsec_" not in delivery.body  # no secret travels, not even ours

    tampered = delivery.body.replace(b"7498", b"1")
    with pytest.raises(WebhookSignatureInvalid):
        verify(secret, delivery.headers["paysaga-signature"], tampered, now=int(time.time()))

    await _delivery_finished(temporal, event["id"])
    row = _event_row(system, event["id"])
    assert row is not None and row.delivered_at is not None
    assert (row.attempts, row.last_error, row.merchant_id) == (1, None, merchant_id)
    assert _buyer_notifications(system, order["id"]) == ["payment_succeeded"]


async def test_an_unacknowledged_event_is_retried_with_the_same_id_and_body_until_2xx(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    receiver: Receiver,
) -> None:
    inbox = receiver.inbox(fail_first=3)
    merchant_id, secret = await _merchant(api, inbox)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])

    await _deliveries(inbox, 4, "three refusals and an acknowledgement")
    event_id = webhook_event_id(order["id"], "order.paid")
    await _delivery_finished(temporal, event_id)
    deliveries = await inbox.received()
    assert [d.answered for d in deliveries] == [500, 500, 500, 200]  # and nothing after
    assert {d.headers["paysaga-event-id"] for d in deliveries} == {event_id}
    assert {d.body for d in deliveries} == {deliveries[0].body}
    for delivery in deliveries:
        assert _verified(secret, delivery)["id"] == event_id
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(deliveries)]
    # 1 s, then doubled to 2 s, then capped at the maximum of 2 s (tests/conftest.py).
    assert gaps[0] >= 0.95 and gaps[1] >= 1.95 and 1.95 <= gaps[2] < 3.5, gaps

    row = _event_row(system, event_id)
    assert row is not None and row.delivered_at is not None
    assert (row.attempts, row.last_error) == (4, None)


async def test_after_a_rotation_events_are_signed_with_the_new_secret_only(
    system: System, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The merchant itself (with its API key) sets its endpoint and rotates its secret."""
    inbox = receiver.inbox()
    merchant_id, old_secret = await _merchant(api, None)
    key = await create_api_key(api, merchant_id)
    as_merchant = {"Authorization": f"Bearer {key}"}
    configured = await api.put(
        f"/v1/merchants/{merchant_id}/webhook", json={"url": inbox.url}, headers=as_merchant
    )
    assert configured.status_code == 200, configured.text
    assert configured.json()["webhook_url"] == inbox.url
    first = await create_order(api, merchant_id)
    await pay(sandbox, first["id"])
    [before] = await _deliveries(inbox, 1, "the first order.paid")
    assert _verified(old_secret, before)["data"]["id"] == first["id"]

    rotated = await api.post(f"/v1/merchants/{merchant_id}/webhook-secret", headers=as_merchant)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["webhook_secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    shown = (await api.get(f"/v1/merchants/{merchant_id}")).json()
    assert "webhook_secret" not in shown and "whsec_" not in json.dumps(shown)

    second = await create_order(api, merchant_id)
    await pay(sandbox, second["id"])
    after = (await _deliveries(inbox, 2, "the second order.paid"))[1]
    assert _verified(new_secret, after)["data"]["id"] == second["id"]
    with pytest.raises(WebhookSignatureInvalid):
        verify(old_secret, after.headers["paysaga-signature"], after.body, now=int(time.time()))


async def test_orders_ending_unpaid_send_order_closed(
    api: httpx.AsyncClient, system: System, receiver: Receiver
) -> None:
    inbox = receiver.inbox()
    merchant_id, secret = await _merchant(api, inbox)
    cancelled = await create_order(api, merchant_id)
    timed_out = await create_order(api, merchant_id, payment_timeout_seconds=1)
    response = await api.post(f"/v1/orders/{cancelled['id']}/cancel", json={"reason": "changed"})
    assert response.status_code == 200, response.text
    await wait_status(api, timed_out["id"], "closed")

    events = [_verified(secret, d) for d in await _deliveries(inbox, 2, "two order.closed")]
    by_order = {event["data"]["id"]: event for event in events}
    assert {e["type"] for e in events} == {"order.closed"}
    assert by_order[cancelled["id"]]["data"]["status"] == "cancelled"
    assert by_order[cancelled["id"]]["data"]["close_reason"] == "changed"
    assert by_order[timed_out["id"]]["data"]["status"] == "closed"
    assert by_order[timed_out["id"]]["data"]["close_reason"] == "payment_timeout"
    for order in (cancelled, timed_out):
        assert _buyer_notifications(system, order["id"]) == ["order_closed"]


async def test_a_refund_sends_order_refunded_and_tells_the_buyer(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, receiver: Receiver
) -> None:
    inbox = receiver.inbox()
    merchant_id, secret = await _merchant(api, inbox)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    key = await create_api_key(api, merchant_id)  # the merchant refunds, with its own key
    response = await api.post(
        f"/v1/orders/{order['id']}/refunds",
        json={"amount": 2000, "reason": "one cup broken"},
        headers={"Idempotency-Key": f"refund-{order['id']}", "Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text
    refund_id = response.json()["id"]

    deliveries = await _deliveries(inbox, 2, "order.paid and order.refunded")
    events = {event["type"]: event for event in (_verified(secret, d) for d in deliveries)}
    refunded = events["order.refunded"]
    assert refunded["id"] == webhook_event_id(order["id"], "order.refunded", refund_id)
    assert refunded["data"]["refund"] == {
        "id": refund_id,
        "amount": 2000,
        "currency": "CNY",
        "status": "succeeded",
        "reason": "one cup broken",
        "requested_by": "merchant",
    }
    assert refunded["data"]["refunded_amount"] == 2000
    assert _buyer_notifications(system, order["id"]) == ["payment_succeeded", "refund_issued"]


async def test_a_payment_the_saga_gives_back_sends_order_refunded(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, receiver: Receiver
) -> None:
    inbox = receiver.inbox()
    merchant_id, secret = await _merchant(api, inbox)
    order = await create_order(api, merchant_id)
    assert (await api.post(f"/v1/merchants/{merchant_id}/suspend")).status_code == 200
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "refunded")

    [delivery] = await _deliveries(inbox, 1, "order.refunded")
    event = _verified(secret, delivery)
    assert event["type"] == "order.refunded"
    assert event["data"]["status"] == "refunded"
    assert event["data"]["refund"]["reason"] == "compensation"
    assert event["data"]["refund"]["amount"] == 7498
    assert _buyer_notifications(system, order["id"]) == ["refund_issued"]


async def test_a_merchant_without_an_endpoint_has_its_events_kept_and_not_sent(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    merchant_id, _ = await _merchant(api, None)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")

    event_id = webhook_event_id(order["id"], "order.paid")
    row = _event_row(system, event_id)
    assert row is not None and json.loads(row.payload)["data"]["id"] == order["id"]
    assert (row.attempts, row.delivered_at) == (0, None)
    with pytest.raises(RPCError):  # no delivery was ever started
        await temporal.get_workflow_handle(webhook_workflow_id(event_id)).describe()


@pytest.mark.parametrize("url", ["ftp://shop.example/hooks", "not a url", ""])
async def test_a_webhook_url_must_be_http_or_https(api: httpx.AsyncClient, url: str) -> None:
    body = {"name": "Tea shop", "commission_rate": "0.05", "webhook_url": url}
    assert (await api.post("/v1/merchants", json=body)).status_code == 400
    merchant_id, _ = await _merchant(api, None)
    response = await api.put(f"/v1/merchants/{merchant_id}/webhook", json={"url": url})
    assert response.status_code == 400
