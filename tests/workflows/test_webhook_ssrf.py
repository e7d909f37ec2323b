"""A merchant's webhook URL must not make us call into our own network (SSRF).

The attack this guards against: a merchant set its webhook URL to the sandbox's control
API on 127.0.0.1, and the next event made our worker press "pay" on another order. The
session's system allows local receivers (its receiver is on 127.0.0.1), so the refusals
are shown here with the allowance off: by the API of this system run in this process
with it off, and by the delivery activity itself, with a resolver the test controls and
a real HTTP receiver that must see nothing (or, for a public name, exactly the request).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.errors import WEBHOOK_UNDELIVERABLE
from activities.webhook_delivery import WebhookCalls
from activities.webhook_targets import WebhookTargets
from api.app import create_app
from db.engine import session_factory
from db.secret_box import SecretBox
from db.tables import WebhookEvent
from domain.keys import webhook_event_id
from domain.webhook_events import WebhookDelivery, WebhookRetry
from domain.webhook_targets import IPAddress
from tests.conftest import System
from tests.receiver import Inbox, Receiver
from tests.support import (
    create_merchant,
    create_order,
    get_order,
    http_client,
    merchant_body,
    pay,
    settings_from_env,
    wait_for,
    wait_status,
)

RETRY = WebhookRetry(initial_ms=1000, maximum_ms=2000, window_seconds=60)


@pytest_asyncio.fixture
async def strict_api(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """This system's API as production runs it (no private webhook targets), in this
    process, as an operator."""
    settings = settings_from_env({**system.env, "PAYSAGA_WEBHOOK_ALLOW_PRIVATE_TARGETS": "false"})
    app = create_app(settings)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the app's lifespan takes over logging
    headers = {"Authorization": f"Bearer {system.operator_token()}"}
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://api", headers=headers
            ) as client:
                yield client
    finally:
        root.handlers[:], root.level = handlers, level


def _assert_refused(response: httpx.Response, code: str, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)


async def test_the_api_refuses_webhook_urls_into_our_network_and_changes_nothing(
    strict_api: httpx.AsyncClient,
) -> None:
    control = "https://127.0.0.1:8100/control/payments/ord_1/pay"
    created = await strict_api.post("/v1/merchants", json=merchant_body(webhook_url=control))
    _assert_refused(created, "webhook_url_not_public", "webhook_url")

    public = "https://hooks.tea-shop.example.com/paysaga"
    created = await strict_api.post("/v1/merchants", json=merchant_body(webhook_url=public))
    assert created.status_code == 201, created.text
    merchant_id = created.json()["id"]

    for url, code in [
        ("http://hooks.tea-shop.example.com/paysaga", "webhook_url_not_https"),
        ("https://[::ffff:127.0.0.1]:8100/control", "webhook_url_not_public"),
        ("https://[::1]/hook", "webhook_url_not_public"),
        ("https://10.0.0.5/hook", "webhook_url_not_public"),
        ("https://169.254.169.254/latest/meta-data/", "webhook_url_not_public"),
        ("https://2130706433/hook", "webhook_url_not_public"),  # 127.0.0.1, written as a number
        ("https://localhost/hook", "webhook_url_not_public"),
    ]:
        put = await strict_api.put(f"/v1/merchants/{merchant_id}/webhook", json={"url": url})
        _assert_refused(put, code, "url")
        patch = await strict_api.patch(f"/v1/merchants/{merchant_id}", json={"webhook_url": url})
        _assert_refused(patch, code, "webhook_url")

    unchanged = await strict_api.get(f"/v1/merchants/{merchant_id}")
    assert unchanged.json()["webhook_url"] == public


async def test_even_with_local_receivers_allowed_the_metadata_service_is_refused(
    api: httpx.AsyncClient,
) -> None:
    merchant_id = await create_merchant(api)
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    response = await api.put(f"/v1/merchants/{merchant_id}/webhook", json={"url": metadata})
    _assert_refused(response, "webhook_url_not_public", "url")


async def test_the_sandbox_controls_want_its_api_key(system: System) -> None:
    async with http_client(system.sandbox_url) as anyone:
        bare = await anyone.post("/control/payments/ord_nobody/pay", json={})
        wrong = await anyone.post(
            "/control/payouts/po_nobody/complete", headers={"Authorization": "Bearer guess"}
        )
    assert (bare.status_code, wrong.status_code) == (401, 401)
    assert bare.json()["error"]["code"] == "unauthorized"


async def test_a_webhook_pointed_at_the_sandbox_controls_pays_nobody_s_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    victim = await create_order(api, await create_merchant(api))
    attacker_id = await create_merchant(api)
    press_pay = f"{system.sandbox_url}/control/payments/{victim['id']}/pay"
    response = await api.put(f"/v1/merchants/{attacker_id}/webhook", json={"url": press_pay})
    assert response.status_code == 200, response.text  # this system allows local receivers

    bait = await create_order(api, attacker_id)
    await pay(sandbox, bait["id"])
    await wait_status(api, bait["id"], "completed")
    event_id = webhook_event_id(bait["id"], "order.paid")
    row = await wait_for(
        lambda: _stored_event(system, event_id),
        lambda row: row is not None and row.attempts >= 1,
        f"the worker's first POST of {event_id}",
    )
    assert row is not None and row.last_error == "answered HTTP 401"
    assert (await get_order(api, victim["id"]))["status"] == "awaiting_payment"
    # Stop the retries: with no URL, the next attempt ends the delivery.
    await api.put(f"/v1/merchants/{attacker_id}/webhook", json={"url": None})


async def _stored_event(system: System, event_id: str) -> WebhookEvent | None:
    with Session(system.engine) as session:
        return session.get(WebhookEvent, event_id)


# -- the delivery activity, in this process, with DNS answers the test chooses -------------


def _resolver(*answer: str) -> Any:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        assert host == "hooks.tea-shop.example"
        return [ip_address(address) for address in answer]

    return resolve


async def _pending_event(api: httpx.AsyncClient, system: System, url: str) -> str:
    """A merchant whose endpoint is `url`, and an event for it not yet delivered."""
    merchant_id = await create_merchant(api)
    response = await api.put(f"/v1/merchants/{merchant_id}/webhook", json={"url": url})
    assert response.status_code == 200, response.text
    event_id = f"evt_{secrets.token_hex(8)}"
    with Session(system.engine) as session, session.begin():
        session.add(
            WebhookEvent(
                id=event_id,
                merchant_id=merchant_id,
                type="order.paid",
                payload=json.dumps({"id": event_id}),
                created_at=datetime.now(UTC),
            )
        )
    return event_id


def _calls(system: System, http: httpx.AsyncClient, targets: WebhookTargets) -> WebhookCalls:
    box = SecretBox(settings_from_env(system.env).data_key)
    return WebhookCalls(session_factory(system.engine), http, box, targets=targets)


def _event(system: System, event_id: str) -> WebhookEvent:
    with Session(system.engine) as session:
        row = session.get(WebhookEvent, event_id)
    assert row is not None
    return row


def _named(inbox: Inbox, scheme: str = "http") -> str:
    """The inbox's URL with a name instead of 127.0.0.1 (.example names are in no DNS)."""
    return inbox.url.replace("http://127.0.0.1", f"{scheme}://hooks.tea-shop.example")


@pytest.mark.parametrize("answer", [("127.0.0.1",), ("93.184.216.34", "::ffff:127.0.0.1")])
async def test_a_name_that_resolves_into_our_network_is_refused_for_good_and_nothing_sent(
    api: httpx.AsyncClient, system: System, receiver: Receiver, answer: tuple[str, ...]
) -> None:
    inbox = receiver.inbox()
    event_id = await _pending_event(api, system, _named(inbox, "https"))
    targets = WebhookTargets(allow_private=False, resolve=_resolver(*answer))
    async with http_client() as http:
        with pytest.raises(ApplicationError) as refused:
            await _calls(system, http, targets).deliver_webhook(
                WebhookDelivery(event_id=event_id, retry=RETRY)
            )
    error = refused.value
    assert (error.type, error.non_retryable) == (WEBHOOK_UNDELIVERABLE, True)
    assert error.category is ApplicationErrorCategory.BENIGN  # logged without a traceback
    row = _event(system, event_id)
    assert (row.attempts, row.delivered_at) == (0, None)
    assert row.last_error is not None and row.last_error.startswith("refused: ")
    assert "127.0.0.1" in row.last_error and "loopback" in row.last_error
    assert await inbox.received() == []


async def test_a_delivery_connects_to_the_address_it_checked_and_names_the_host(
    api: httpx.AsyncClient, system: System, receiver: Receiver
) -> None:
    # The name exists in no DNS: only the address the check resolved can be reached.
    inbox = receiver.inbox()
    named = _named(inbox)
    event_id = await _pending_event(api, system, named)
    targets = WebhookTargets(allow_private=True, resolve=_resolver("127.0.0.1"))
    async with http_client() as http:
        receipt = await _calls(system, http, targets).deliver_webhook(
            WebhookDelivery(event_id=event_id, retry=RETRY)
        )
    assert (receipt.delivered, receipt.status_code, receipt.attempts) == (True, 200, 1)
    [request] = await inbox.received()
    assert request.headers["host"] == httpx.URL(named).netloc.decode()
    assert request.headers["paysaga-event-id"] == event_id
    assert request.headers["connection"] == "close"
