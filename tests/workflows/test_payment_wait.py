"""The payment wait learns from its own queries what a lost notification would have said."""

from __future__ import annotations

import time

import httpx

from channels.base import PaymentStatus
from channels.card import mapping as card_mapping
from channels.card import wire as card_wire
from channels.wechatpay.mapping import PAYMENT_STATUS as WECHATPAY_STATUS
from tests.support import create_merchant, create_order, wait_status


async def test_a_decline_whose_notification_is_lost_closes_the_order_at_the_next_poll(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id, channel="alipay", payment_timeout_seconds=60)
    declined_at = time.monotonic()
    response = await sandbox.post(
        f"/control/payments/{order['id']}/decline", json={"notify": "drop"}
    )
    assert response.status_code == 200, response.text

    # Alipay's query now answers TRADE_CLOSED; the saga polls after 1 s, then 2 s, ...
    closed = await wait_status(api, order["id"], "closed", timeout=15)

    assert closed["close_reason"] == "payment_declined"
    assert time.monotonic() - declined_at < 15  # not the 60 s payment timeout
    deliveries = await sandbox.get(f"/control/payments/{order['id']}/deliveries")
    assert deliveries.json() == []  # the saga never heard of the decline but by asking


def test_every_channel_state_that_ends_a_payment_is_closed_or_declined() -> None:
    """What the saga's poll acts on: a payment that can no longer be paid, on every channel."""
    ended = {PaymentStatus.CLOSED, PaymentStatus.DECLINED}
    assert {WECHATPAY_STATUS[state] for state in ("CLOSED", "PAYERROR", "REVOKED")} <= ended
    canceled = _intent(status="canceled")
    failed = _intent(
        status="requires_payment_method",
        last_payment_error={"type": "card_error", "code": "card_declined"},
    )
    assert card_mapping.payment_status(canceled) in ended
    assert card_mapping.payment_status(failed) in ended
    assert card_mapping.payment_status(_intent(status="requires_payment_method")) not in ended


def _intent(**fields: object) -> card_wire.PaymentIntent:
    base = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 1000,
        "currency": "cny",
        "metadata": {"order_id": "ord_1", "merchant_id": "mer_1"},
        "hosted_url": "http://127.0.0.1/pay/pi_1",
    }
    return card_wire.PaymentIntent.model_validate({**base, **fields})
