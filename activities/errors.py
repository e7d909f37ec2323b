"""Making the failures activities report to the saga: a business refusal (benign, not
retried) or a retryable one. Their names and what each means: `domain.failures`."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from domain.failures import (
    BUSINESS_ERRORS,
    CHANNEL_REJECTED,
    CHANNEL_UNAVAILABLE,
    COUPON_REJECTED,
    INSUFFICIENT_FUNDS,
    MERCHANT_SUSPENDED,
    MODIFICATION_FAILED,
    ORDER_ENDED,
    ORDER_GIVEN_BACK,
    ORDER_INVALID,
    ORDER_NOT_MODIFIABLE,
    PAYMENT_NOT_FOUND,
    REFUND_PENDING,
    REFUND_REFUSED,
    REFUND_REJECTED,
    WEBHOOK_NOT_ACKNOWLEDGED,
    WEBHOOK_UNDELIVERABLE,
)

__all__ = [
    "BUSINESS_ERRORS",
    "CHANNEL_REJECTED",
    "CHANNEL_UNAVAILABLE",
    "COUPON_REJECTED",
    "INSUFFICIENT_FUNDS",
    "MERCHANT_SUSPENDED",
    "MODIFICATION_FAILED",
    "ORDER_ENDED",
    "ORDER_GIVEN_BACK",
    "ORDER_INVALID",
    "ORDER_NOT_MODIFIABLE",
    "PAYMENT_NOT_FOUND",
    "REFUND_PENDING",
    "REFUND_REFUSED",
    "REFUND_REJECTED",
    "WEBHOOK_NOT_ACKNOWLEDGED",
    "WEBHOOK_UNDELIVERABLE",
    "business_error",
    "retryable_error",
]


def business_error(error_type: str, message: str, *details: object) -> ApplicationError:
    """A refusal the saga expects: benign, so the worker logs it without a traceback."""
    return ApplicationError(
        message,
        *details,
        type=error_type,
        non_retryable=True,
        category=ApplicationErrorCategory.BENIGN,
    )


def retryable_error(error_type: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=False)
