"""Failures activities report to the saga, as Temporal application error types.

    ApplicationError (temporalio)
    ├── CouponRejected        the coupon was taken meanwhile            (not retryable)
    ├── MerchantSuspended     settlement refused: the merchant is suspended (not retryable)
    ├── ChannelRejected       the channel refused the request for good  (not retryable)
    ├── PaymentNotFound       the channel has no payment for the order  (not retryable)
    ├── RefundRefused         the channel refused a refund              (not retryable)
    ├── RefundPending         the channel has not finished a refund     (retryable: polls)
    ├── RefundRejected        our rules refuse a refund; details: (code, param) (not retryable)
    ├── ChannelUnavailable    network, timeout or 5xx at the channel    (retryable)
    ├── WebhookNotAcknowledged  the merchant's endpoint did not answer 2xx (retryable: backoff)
    └── WebhookUndeliverable  no such event, or the merchant has no signing secret (not retryable)

The saga catches the non-retryable ones by type; everything else is retried.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

COUPON_REJECTED = "CouponRejected"
MERCHANT_SUSPENDED = "MerchantSuspended"
CHANNEL_REJECTED = "ChannelRejected"
PAYMENT_NOT_FOUND = "PaymentNotFound"
REFUND_REFUSED = "RefundRefused"
REFUND_PENDING = "RefundPending"
REFUND_REJECTED = "RefundRejected"
CHANNEL_UNAVAILABLE = "ChannelUnavailable"
WEBHOOK_NOT_ACKNOWLEDGED = "WebhookNotAcknowledged"
WEBHOOK_UNDELIVERABLE = "WebhookUndeliverable"


def business_error(error_type: str, message: str, *details: object) -> ApplicationError:
    return ApplicationError(message, *details, type=error_type, non_retryable=True)


def retryable_error(error_type: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=False)
