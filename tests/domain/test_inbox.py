"""Which of the saga's notices is the order's payment, and which are given back."""

from __future__ import annotations

from domain.inbox import (
    NoticeRole,
    already_judged,
    triage_late,
    triage_replaced,
    triage_while_waiting,
    unjudged_payments,
)
from domain.saga import PaymentSignal

PAID = "payment.succeeded"
DECLINED = "payment.declined"
REFUNDED = "refund.succeeded"


def notice(
    kind: str = PAID, txn: str | None = "txn_1", attempt: int | None = None
) -> PaymentSignal:
    return PaymentSignal(
        source="notification:1",
        kind=kind,
        channel_txn_id=txn,
        amount=1000,
        currency="CNY",
        merchant_id="mch_1",
        attempt=attempt,
    )


def test_while_waiting_the_current_attempts_payment_and_decline_decide() -> None:
    assert triage_while_waiting(notice(PAID), 1) is NoticeRole.PAYMENT
    assert triage_while_waiting(notice(DECLINED), 1) is NoticeRole.DECLINE
    assert triage_while_waiting(notice(REFUNDED), 1) is NoticeRole.NOT_A_PAYMENT


def test_a_notice_without_an_attempt_is_about_the_first() -> None:
    assert triage_while_waiting(notice(attempt=None), 1) is NoticeRole.PAYMENT
    assert triage_while_waiting(notice(attempt=None), 2) is NoticeRole.FOR_REPLACED_ATTEMPT
    assert triage_while_waiting(notice(attempt=2), 2) is NoticeRole.PAYMENT


def test_any_notice_of_a_replaced_attempt_goes_aside_even_a_decline() -> None:
    assert triage_while_waiting(notice(DECLINED, attempt=1), 2) is NoticeRole.FOR_REPLACED_ATTEMPT


def test_of_a_replaced_attempt_only_an_unjudged_payment_is_given_back() -> None:
    assert triage_replaced(notice(PAID), set()) is NoticeRole.REPLACED_PAYMENT
    assert triage_replaced(notice(PAID), {"txn_1"}) is NoticeRole.DUPLICATE
    assert triage_replaced(notice(DECLINED), set()) is NoticeRole.NOT_A_PAYMENT
    assert triage_replaced(notice(PAID, txn=None), set()) is NoticeRole.NOT_A_PAYMENT


def test_once_the_order_no_longer_waits_its_unjudged_payments_are_late() -> None:
    inbox = [
        notice(PAID, "txn_1"),
        notice(PAID, "txn_seen"),
        notice(DECLINED, "txn_2"),
        notice(PAID, None),
        notice(REFUNDED, "txn_3"),
        notice(PAID, "txn_4", attempt=1),
    ]
    late = unjudged_payments(inbox, {"txn_seen"})
    assert [n.channel_txn_id for n in late] == ["txn_1", "txn_4"]
    assert triage_late(late[0], 1) is NoticeRole.LATE_PAYMENT
    assert triage_late(late[1], 2) is NoticeRole.FOR_REPLACED_ATTEMPT


def test_a_payment_is_judged_once_by_its_transaction() -> None:
    assert already_judged(notice(txn="txn_1"), {"txn_1"})
    assert not already_judged(notice(txn="txn_2"), {"txn_1"})
    assert not already_judged(notice(txn=None), {"txn_1"})
