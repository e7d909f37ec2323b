"""What the channel's word on a payment means, and how the wait for it ends."""

from __future__ import annotations

import pytest

from channels.base import NotificationKind, PaymentStatus
from domain.payment_outcome import PaymentOutcome, WaitEnd, outcome_of_notice, outcome_of_poll


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (PaymentStatus.PAID, PaymentOutcome.PAID),
        (PaymentStatus.DECLINED, PaymentOutcome.DECLINED),
        (PaymentStatus.CLOSED, PaymentOutcome.CLOSED_AT_CHANNEL),
        (PaymentStatus.PENDING, PaymentOutcome.PENDING),
    ],
)
def test_every_status_a_channel_reports_has_its_meaning(
    status: PaymentStatus, outcome: PaymentOutcome
) -> None:
    assert outcome_of_poll(status) is outcome


def test_a_status_nobody_knows_keeps_the_order_waiting() -> None:
    assert outcome_of_poll("on_hold") is PaymentOutcome.PENDING


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [
        (NotificationKind.PAYMENT_SUCCEEDED, PaymentOutcome.PAID),
        (NotificationKind.PAYMENT_DECLINED, PaymentOutcome.DECLINED),
        (NotificationKind.REFUND_SUCCEEDED, PaymentOutcome.NOT_A_PAYMENT),
        (NotificationKind.REFUND_FAILED, PaymentOutcome.NOT_A_PAYMENT),
    ],
)
def test_a_notice_says_paid_declined_or_nothing_about_the_payment(
    kind: NotificationKind, outcome: PaymentOutcome
) -> None:
    assert outcome_of_notice(kind) is outcome


def test_each_unpaid_ending_but_a_cancel_names_why_the_order_closed() -> None:
    reasons = {end: end.close_reason for end in WaitEnd}
    assert reasons == {
        WaitEnd.PAID: None,
        WaitEnd.CANCELLED: None,
        WaitEnd.TIMEOUT: "payment_timeout",
        WaitEnd.DECLINED: "payment_declined",
        WaitEnd.CHANNEL_FAILED: "channel_unavailable",
    }
