"""A merchant's staff send a webhook event again from the order's page: the same event id
and body arrive a second time (merchants dedupe by the id); another merchant's event is a
404 and sends nothing."""

from __future__ import annotations

import httpx
import pytest
from temporalio.client import Client

from domain.keys import webhook_event_id, webhook_workflow_id
from tests.conftest import System
from tests.pages.support import form_token, signed_in_staff
from tests.receiver import Receiver
from tests.support import create_merchant, create_order, merchant_body, pay, wait_for


@pytest.mark.parametrize("system", ["sqlite"], indirect=True)  # the pages, not the database
async def test_staff_resend_an_event_and_it_arrives_again_with_the_same_id(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    receiver: Receiver,
) -> None:
    inbox = receiver.inbox()
    made = await api.post("/v1/merchants", json=merchant_body(webhook_url=inbox.url))
    assert made.status_code == 201, made.text
    merchant_id = made.json()["id"]
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    event_id = webhook_event_id(order["id"], "order.paid")
    first = await wait_for(inbox.received, lambda got: len(got) >= 1, "the first delivery")
    await temporal.get_workflow_handle(webhook_workflow_id(event_id)).result()

    staff = await signed_in_staff(api, system.api_url, merchant_id)
    page = await staff.get(f"/dashboard/orders/{order['id']}")
    assert page.status_code == 200 and f"/webhook-events/{event_id}/resend" in page.text
    token = form_token(page.text)
    resent = await staff.post(
        f"/dashboard/webhook-events/{event_id}/resend", {"csrf_token": token, "back": "/dashboard"}
    )
    assert resent.status_code == 303, resent.text
    got = await wait_for(inbox.received, lambda got: len(got) >= 2, "the second delivery")
    assert got[1].headers["paysaga-event-id"] == event_id
    assert got[1].body == first[0].body

    # Another merchant's staff cannot resend it.
    stranger = await signed_in_staff(api, system.api_url, await create_merchant(api))
    other_page = await stranger.get("/dashboard")
    refused = await stranger.post(
        f"/dashboard/webhook-events/{event_id}/resend",
        {"csrf_token": form_token(other_page.text)},
    )
    assert refused.status_code == 404
    await temporal.get_workflow_handle(webhook_workflow_id(event_id)).result()
    assert len(await inbox.received()) == 2
