"""fulfil_payment: only the settlement's refusal fails the step; past it nothing does for good.

The saga compensates a paid order whose step failed with a business refusal, so the merged
step must not let a refusal of the notification (or the release) read as one: the
notification's is handed back for ops, anything else is retried. OrderRecords' own steps
are stood in for (their database work has its own tests); the rules are this module's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

import pytest
from temporalio.exceptions import ApplicationError

from activities.errors import MERCHANT_SUSPENDED, business_error
from activities.order_records import OrderRecords
from activities.payment_settlement import PaymentSettlement
from db.ledger import InsufficientFunds
from domain.saga import Fulfilled, OrderRef, PaymentFulfilment, PaymentRecord
from domain.split import Split, split_payment


class Records:
    """OrderRecords' steps, recording the calls; each may be told to fail."""

    def __init__(self, **failures: Exception) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if name in self.failures:
            raise self.failures[name]

    def record_payment(self, record: PaymentRecord) -> None:
        self._step("record_payment")

    def settle_order(self, ref: OrderRef) -> Split:
        self._step("settle_order")
        return split_payment(7498, Decimal("0.006"), Decimal("0.05"))

    def notify_parties(self, ref: OrderRef) -> None:
        self._step("notify_parties")

    def release_funds(self, ref: OrderRef) -> int:
        self._step("release_funds")
        return 7000


def _fulfil(records: Records, release: bool = True) -> Fulfilled:
    pairs = PaymentSettlement(cast(OrderRecords, records))
    record = PaymentRecord(order_id="ord_1", channel_txn_id="txn_1", amount=7498, currency="CNY")
    return pairs.fulfil_payment(PaymentFulfilment(record=record, release=release))


def test_all_four_steps_run_in_order_and_the_hold_skips_the_release() -> None:
    records = Records()
    done = _fulfil(records)
    assert records.calls == ["record_payment", "settle_order", "notify_parties", "release_funds"]
    assert done.released_amount == 7000 and done.notify_refusal is None
    held = Records()
    assert _fulfil(held, release=False).released_amount is None
    assert held.calls == ["record_payment", "settle_order", "notify_parties"]


def test_the_settlement_s_refusal_fails_the_step_for_good() -> None:
    refusal = business_error(MERCHANT_SUSPENDED, "merchant m is suspended")
    records = Records(settle_order=refusal)
    with pytest.raises(ApplicationError) as raised:
        _fulfil(records)
    assert raised.value.type == MERCHANT_SUSPENDED and raised.value.non_retryable
    assert records.calls == ["record_payment", "settle_order"]


def test_a_refused_notification_is_handed_back_and_the_share_released() -> None:
    records = Records(notify_parties=business_error("ChannelRejected", "no buyer to tell"))
    done = _fulfil(records)
    assert done.notify_refusal == "no buyer to tell"
    assert records.calls[-1] == "release_funds"


@pytest.mark.parametrize(
    "failure",
    [InsufficientFunds("merchant_pending:m:CNY", -1), business_error("Odd", "refused")],
    ids=["ledger", "business"],
)
def test_what_fails_the_release_is_retried_never_compensated(failure: Exception) -> None:
    with pytest.raises(ApplicationError) as raised:
        _fulfil(Records(release_funds=failure))
    assert not raised.value.non_retryable
