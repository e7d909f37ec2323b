"""When the saga may take a channel's word as the order's payment."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.payment_check import payment_mismatch
from domain.pricing import OrderLine, price_order
from domain.saga import OrderInput, PaymentSignal

ORDER = OrderInput(
    order_id="ord_1",
    merchant_id="mch_1",
    channel="alipay",
    priced=price_order(
        [OrderLine(sku="tea", name="Tea", quantity=2, unit_amount=1999)],
        "CNY",
        None,
        datetime(2026, 11, 22, tzinfo=UTC),
    ),
    channel_fee_rate=Decimal("0.006"),
    commission_rate=Decimal("0.05"),
    payment_timeout_seconds=60,
    notify_url="http://127.0.0.1/notify",
)


def _signal(**changes: object) -> PaymentSignal:
    fields: dict[str, object] = {
        "source": "query",
        "kind": "payment.succeeded",
        "channel_txn_id": "txn_1",
        "amount": 3998,
        "currency": "CNY",
        "merchant_id": "mch_1",
    }
    return PaymentSignal.model_validate(fields | changes)


def test_the_order_s_exact_payment_matches() -> None:
    assert payment_mismatch(ORDER, _signal()) is None


def test_a_channel_that_does_not_name_the_shop_is_judged_by_amount_and_currency() -> None:
    assert payment_mismatch(ORDER, _signal(merchant_id=None)) is None  # Alipay's query
    assert payment_mismatch(ORDER, _signal(merchant_id=None, amount=3997)) is not None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"amount": 3997}, "amount mismatch"),
        ({"currency": "USD"}, "currency mismatch"),
        ({"merchant_id": "mch_2"}, "merchant mismatch"),
        ({"channel_txn_id": None}, "without a channel transaction id"),
    ],
)
def test_anything_else_is_a_mismatch(changes: dict[str, object], reason: str) -> None:
    problem = payment_mismatch(ORDER, _signal(**changes))
    assert problem is not None and reason in problem
