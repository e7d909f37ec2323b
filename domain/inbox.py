"""The order saga's inbox of channel notices (and its own queries' findings): which of
them is the order's payment, a decline, a duplicate, a payment for an attempt since
replaced, or a late payment to give back.

Each notice names the payment attempt it is about (None: the first, as notices did
before modifications). Only a payment of the current attempt can be the order's; a
payment of a replaced attempt is never kept, and once the order no longer waits, no
payment is.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Set

from domain.payment_outcome import PaymentOutcome, outcome_of_notice
from domain.saga import PaymentSignal


class NoticeRole(enum.StrEnum):
    PAYMENT = "payment"  # the current attempt paid: judged as the order's payment
    DECLINE = "decline"  # the current attempt was declined
    NOT_A_PAYMENT = "not_a_payment"  # a refund's notice, or a replaced attempt's decline
    DUPLICATE = "duplicate"  # a payment already judged (its transaction was seen)
    FOR_REPLACED_ATTEMPT = "for_replaced_attempt"  # about an attempt since replaced
    REPLACED_PAYMENT = "replaced_payment"  # a payment of a replaced attempt: given back
    LATE_PAYMENT = "late_payment"  # paid when the order no longer waits: given back


def attempt_of(notice: PaymentSignal) -> int:
    """The payment attempt a notice is about."""
    return notice.attempt or 1


def already_judged(notice: PaymentSignal, seen_txn_ids: Set[str]) -> bool:
    """Whether the notice's transaction was judged before (taken, refunded or flagged)."""
    return notice.channel_txn_id in seen_txn_ids


def triage_while_waiting(notice: PaymentSignal, current_attempt: int) -> NoticeRole:
    """A notice taken while the order waits for its payment: PAYMENT (judged next),
    DECLINE, NOT_A_PAYMENT, or FOR_REPLACED_ATTEMPT (see `triage_replaced`)."""
    if attempt_of(notice) != current_attempt:
        return NoticeRole.FOR_REPLACED_ATTEMPT
    outcome = outcome_of_notice(notice.kind)
    if outcome is PaymentOutcome.DECLINED:
        return NoticeRole.DECLINE
    if outcome is PaymentOutcome.PAID:
        return NoticeRole.PAYMENT
    return NoticeRole.NOT_A_PAYMENT


def triage_replaced(notice: PaymentSignal, seen_txn_ids: Set[str]) -> NoticeRole:
    """A notice about a replaced attempt: only a payment not judged before is acted on
    (REPLACED_PAYMENT); a decline or refund notice changes nothing."""
    if outcome_of_notice(notice.kind) is not PaymentOutcome.PAID or not notice.channel_txn_id:
        return NoticeRole.NOT_A_PAYMENT
    if already_judged(notice, seen_txn_ids):
        return NoticeRole.DUPLICATE
    return NoticeRole.REPLACED_PAYMENT


def unjudged_payments(
    inbox: Iterable[PaymentSignal], seen_txn_ids: Set[str]
) -> list[PaymentSignal]:
    """The payments in the inbox that were never judged: once the order no longer waits,
    each is given back (the rest of the inbox changes nothing)."""
    return [
        notice
        for notice in inbox
        if outcome_of_notice(notice.kind) is PaymentOutcome.PAID
        and notice.channel_txn_id
        and not already_judged(notice, seen_txn_ids)
    ]


def triage_late(notice: PaymentSignal, current_attempt: int) -> NoticeRole:
    """An unjudged payment once the order no longer waits: its current attempt's is a
    LATE_PAYMENT; a replaced attempt's goes through `triage_replaced`."""
    if attempt_of(notice) != current_attempt:
        return NoticeRole.FOR_REPLACED_ATTEMPT
    return NoticeRole.LATE_PAYMENT
