"""fulfil_payment: only the settlement's refusal fails the step; past it nothing does for good.

The saga compensates a paid order whose step failed with a business refusal, so the merged
step must not let a refusal of the notification (or the release) read as one: the
notification's is handed back for ops, anything else is retried. OrderRecords' transactions
are stood in for (their database work has its own tests: tests/db/test_payment_fulfilment.py);
the rules are this module's.
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
    """OrderRecords' transactions that fulfil_payment runs (the payment recorded and settled;
    the notices and the release) and the steps it falls back to, recording the calls; each
    may be told to fail."""

    def __init__(self, **failures: Exception) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if name in self.failures:
            raise self.failures[name]

    def record_and_settle_payment(self, record: PaymentRecord) -> Split:
        self._step("record_and_settle_payment")
        return split_payment(7498, Decimal("0.006"), Decimal("0.05"))

    def notify_and_release(self, ref: OrderRef, release: bool) -> int | None:
        self._step("notify_and_release" if release else "notify_and_hold")
        return 7000 if release else None

    def notify_parties(self, ref: OrderRef) -> None:
        self._step("notify_parties")

    def release_funds(self, ref: OrderRef) -> int:
        self._step("release_funds")
        return 7000


def _fulfil(records: Records, release: bool = True) -> Fulfilled:
    pairs = PaymentSettlement(cast(OrderRecords, records))
    record = PaymentRecord(order_id="ord_1", channel_txn_id="txn_1", amount=7498, currency="CNY")
    return pairs.fulfil_payment(PaymentFulfilment(record=record, release=release))


def test_two_transactions_run_in_order_and_the_hold_skips_the_release() -> None:
    records = Records()
    done = _fulfil(records)
    assert records.calls == ["record_and_settle_payment", "notify_and_release"]
    assert done.released_amount == 7000 and done.notify_refusal is None
    held = Records()
    assert _fulfil(held, release=False).released_amount is None
    assert held.calls == ["record_and_settle_payment", "notify_and_hold"]


def test_the_settlement_s_refusal_fails_the_step_for_good() -> None:
    refusal = business_error(MERCHANT_SUSPENDED, "merchant m is suspended")
    records = Records(record_and_settle_payment=refusal)
    with pytest.raises(ApplicationError) as raised:
        _fulfil(records)
    assert raised.value.type == MERCHANT_SUSPENDED and raised.value.non_retryable
    assert records.calls == ["record_and_settle_payment"]


@pytest.mark.parametrize("release", [True, False], ids=["released", "held"])
def test_a_refused_notification_is_handed_back_and_the_share_released_alone(
    release: bool,
) -> None:
    refusal = business_error("ChannelRejected", "no buyer to tell")
    combined = "notify_and_release" if release else "notify_and_hold"
    records = Records(**{combined: refusal, "notify_parties": refusal})
    done = _fulfil(records, release=release)
    assert done.notify_refusal == "no buyer to tell"
    alone = ["release_funds"] if release else []
    assert records.calls == ["record_and_settle_payment", combined, "notify_parties", *alone]


def test_a_refusal_that_the_notices_alone_do_not_repeat_is_not_handed_back() -> None:
    records = Records(notify_and_release=business_error("Odd", "refused once"))
    done = _fulfil(records)
    assert done.notify_refusal is None and done.released_amount == 7000


@pytest.mark.parametrize(
    "failure",
    [InsufficientFunds("merchant_pending:m:CNY", -1), business_error("Odd", "refused")],
    ids=["ledger", "business"],
)
def test_what_fails_the_release_is_retried_never_compensated(failure: Exception) -> None:
    records = Records(notify_and_release=failure, release_funds=failure)
    with pytest.raises(ApplicationError) as raised:
        _fulfil(records)
    assert not raised.value.non_retryable
    # Refused for good, so the notices are done alone first, as the separate steps did.
    steps = ["notify_parties", "release_funds"]
    assert records.calls == ["record_and_settle_payment", "notify_and_release", *steps]
