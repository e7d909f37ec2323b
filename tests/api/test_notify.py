"""POST /v1/channels/{channel}/notify: only a genuine, fresh, readable message is acted upon.

Each test crafts the notification the sandbox would send for an order awaiting payment,
signs it (or spoils it) itself, and checks what the order and our records show afterwards.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from channels.signature import SIGNATURE_HEADER, sign
from db.tables import ChannelNotification
from tests.conftest import System
from tests.support import create_merchant, create_order, get_order, wait_status

Request = tuple[str, bytes, dict[str, str]]


def payment_event(order: dict[str, Any], **data: Any) -> bytes:
    """The body the sandbox sends when the buyer pays `order` (see channels/sandbox/events.py)."""
    event = {
        "id": f"evt_test_{secrets.token_hex(8)}",
        "type": "payment.succeeded",
        "created": int(time.time()),
        "data": {
            "payment_id": order["payment"]["channel_payment_id"],
            "out_trade_no": order["id"],
            "merchant_id": order["merchant_id"],
            "amount": order["amounts"]["payable"],
            "currency": order["currency"],
            "txn_id": f"txn_test_{secrets.token_hex(8)}",
            "status": "paid",
            "refund_id": None,
        }
        | data,
    }
    return json.dumps(event, separators=(",", ":")).encode()


def signed(secret: bytes, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body, stamp)}


def _path(order: dict[str, Any]) -> str:
    return f"/v1/channels/{order['channel']}/notify"


def _notifications_for(system: System, order_id: str) -> list[ChannelNotification]:
    with Session(system.engine) as session:
        query = select(ChannelNotification).where(ChannelNotification.order_id == order_id)
        return list(session.exec(query).all())


async def _awaiting_order(api: httpx.AsyncClient) -> dict[str, Any]:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, payment_timeout_seconds=120)
    assert order["status"] == "awaiting_payment"
    return order


async def test_a_correctly_signed_payment_completes_the_order(
    api: httpx.AsyncClient, system: System
) -> None:
    secret = system.env["PAYSAGA_SANDBOX_WEBHOOK_SECRET"].encode()
    order = await _awaiting_order(api)
    body = payment_event(order)

    response = await api.post(_path(order), content=body, headers=signed(secret, body))

    assert response.status_code == 200, response.text
    assert response.json() == {"received": True}
    done = await wait_status(api, order["id"], "completed")
    assert done["payment"]["channel_txn_id"] == json.loads(body)["data"]["txn_id"]
    stored = _notifications_for(system, order["id"])
    assert [(n.kind, n.raw_body) for n in stored] == [("payment.succeeded", body.decode())]


# Each spoils one thing about an otherwise genuine notification for `order`.


def _tampered(order: dict[str, Any], secret: bytes) -> Request:
    body = payment_event(order)
    headers = signed(secret, body)
    assert order["amounts"]["payable"] == 7498
    spoiled = body.replace(b'"amount":7498', b'"amount":7499')  # one byte: pay a cent more
    assert len(spoiled) == len(body) and spoiled != body
    return _path(order), spoiled, headers


def _wrong_secret(order: dict[str, Any], _secret: bytes) -> Request:
    body = payment_event(order)
    return _path(order), body, signed(b"not-the-shared-secret", body)


def _unsigned(order: dict[str, Any], _secret: bytes) -> Request:
    return _path(order), payment_event(order), {"Content-Type": "application/json"}


def _stale(order: dict[str, Any], secret: bytes) -> Request:
    body = payment_event(order)
    return _path(order), body, signed(secret, body, int(time.time()) - 301)


def _from_the_future(order: dict[str, Any], secret: bytes) -> Request:
    body = payment_event(order)
    # ceil: the server reads its clock later, so it must still see more than 300 s ahead.
    return _path(order), body, signed(secret, body, math.ceil(time.time()) + 301)


def _unknown_channel(order: dict[str, Any], secret: bytes) -> Request:
    body = payment_event(order)
    return "/v1/channels/paypal/notify", body, signed(secret, body)


def _unreadable(order: dict[str, Any], secret: bytes) -> Request:
    body = payment_event(order)[:-10]  # cut short: no longer JSON
    return _path(order), body, signed(secret, body)


def _unknown_order(order: dict[str, Any], secret: bytes) -> Request:
    body = payment_event(order, out_trade_no=f"ord_unknown_{secrets.token_hex(4)}")
    return _path(order), body, signed(secret, body)


@pytest.mark.parametrize(
    ("spoil", "status", "code"),
    [
        (_tampered, 401, "invalid_signature"),
        (_wrong_secret, 401, "invalid_signature"),
        (_unsigned, 401, "invalid_signature"),
        (_stale, 401, "invalid_signature"),
        (_from_the_future, 401, "invalid_signature"),
        (_unknown_channel, 404, "channel_not_found"),
        (_unreadable, 400, "invalid_notification"),
        (_unknown_order, 404, "order_not_found"),
    ],
    ids=[
        "body-changed-after-signing",
        "wrong-secret",
        "no-signature",
        "signed-301s-ago",
        "signed-301s-ahead",
        "unknown-channel",
        "malformed-json",
        "unknown-order",
    ],
)
async def test_a_refused_notification_changes_nothing(
    api: httpx.AsyncClient,
    system: System,
    spoil: Callable[[dict[str, Any], bytes], Request],
    status: int,
    code: str,
) -> None:
    secret = system.env["PAYSAGA_SANDBOX_WEBHOOK_SECRET"].encode()
    order = await _awaiting_order(api)
    path, body, headers = spoil(order, secret)

    response = await api.post(path, content=body, headers=headers)

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param"}
    assert error["code"] == code
    assert (await get_order(api, order["id"]))["status"] == "awaiting_payment"
    assert _notifications_for(system, order["id"]) == []
