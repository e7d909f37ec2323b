"""What the channel's word on a payment means for the order waiting on it, and how that
wait ends.

The word comes as a notification's kind or as the status our own query found; both
are spelled as the channel adapters spell them (`channels.base.NotificationKind` and
`PaymentStatus` values: domain imports nothing outside itself, and
tests/domain/test_payment_outcome.py holds the two spellings together).
"""

from __future__ import annotations

import enum


class PaymentOutcome(enum.StrEnum):
    """What one word from the channel says about a payment attempt."""

    PAID = "paid"  # the buyer paid: judged (amount, currency, merchant) before it is taken
    DECLINED = "declined"  # the buyer's attempt failed for good
    CLOSED_AT_CHANNEL = "closed_at_channel"  # closed there before payment: never payable now
    PENDING = "pending"  # nothing decided yet: keep waiting
    NOT_A_PAYMENT = "not_a_payment"  # a refund's notice: refunds are confirmed by their step


_OF_POLL = {
    "paid": PaymentOutcome.PAID,
    "declined": PaymentOutcome.DECLINED,
    "closed": PaymentOutcome.CLOSED_AT_CHANNEL,
    "pending": PaymentOutcome.PENDING,
}
_OF_NOTICE = {
    "payment.succeeded": PaymentOutcome.PAID,
    "payment.declined": PaymentOutcome.DECLINED,
}


def outcome_of_poll(status: str) -> PaymentOutcome:
    """What the payment status our query found means (a status we do not know: pending)."""
    return _OF_POLL.get(status, PaymentOutcome.PENDING)


def outcome_of_notice(kind: str) -> PaymentOutcome:
    """What a notification of this kind means for the payment (refund notices: nothing)."""
    return _OF_NOTICE.get(kind, PaymentOutcome.NOT_A_PAYMENT)


class WaitEnd(enum.StrEnum):
    """How the order's wait for its payment ended."""

    PAID = "paid"
    DECLINED = "declined"
    TIMEOUT = "timeout"  # the payment window closed
    CANCELLED = "cancelled"  # the buyer (or ops) cancelled first
    CHANNEL_FAILED = "channel_failed"  # the channel would not take the payment

    @property
    def close_reason(self) -> str | None:
        """The reason a closed order records; None for an ending that does not close it."""
        return _CLOSE_REASONS.get(self)


_CLOSE_REASONS = {
    WaitEnd.TIMEOUT: "payment_timeout",
    WaitEnd.DECLINED: "payment_declined",
    WaitEnd.CHANNEL_FAILED: "channel_unavailable",
}
