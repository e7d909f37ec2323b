"""How the saga calls its activities: timeouts and retry policies in one place.

Database writes and channel calls are all short, so they run as local
activities: one marker event each in the history instead of three events, and
the Temporal server is this stack's bottleneck.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as StepTimeout

from domain.failures import BUSINESS_ERRORS, INSUFFICIENT_FUNDS
from domain.webhook_events import WebhookRetry

# How a step fails for good: a local activity raises its ApplicationError (or a
# timeout) itself, a regular activity wraps it in ActivityError.
StepFailed = (ActivityError, ApplicationError, StepTimeout)


def business_failure(error: BaseException) -> str | None:
    """The named business refusal a failed step reports, or None for any other failure."""
    failure = error.cause if isinstance(error, ActivityError) else error
    if isinstance(failure, ApplicationError) and failure.type in BUSINESS_ERRORS:
        return failure.type
    return None


class UnclassifiedFailure(Exception):
    """A step failed for good with no business reason (it should not: such failures are
    retried). Raised in workflow code it fails the workflow *task*, not the workflow, so
    the saga stops where it is, compensating nothing, until a fixed worker replays it."""


# A database write: only a named business refusal fails the step (after payment, that
# means compensation: the buyer gets the money back). Anything else, an unreachable
# database or a bug alike, is retried without limit (no maximum attempts, no
# schedule-to-close): a paid order waits for the fix rather than being refunded for it.
# A business refusal raised as an ApplicationError is non-retryable by itself; the ledger's
# InsufficientFunds is a plain exception, matched by its class name.
DB_WRITE: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=10),
        non_retryable_error_types=[INSUFFICIENT_FUNDS],
    ),
}

# A database write past the point of no return (releasing funds, recording a refund's
# outcome): nothing to compensate, so it is retried until the database takes it.
DB_MUST_FINISH: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)
    ),
}

# A page of a day's settlement prepared at once (a regular activity: its result is in the
# run's history before the run acts on it): longer than a row's write, retried until done.
DB_PAGE_MUST_FINISH: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
    ),
}

# A read the next day's run makes again (the settlement run's look back): a few tries over
# a few seconds, then left to that run rather than holding this one up.
DB_TRY_TODAY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5),
}

# A channel call that must eventually happen (close, refund): retried without limit.
CHANNEL_MUST_FINISH: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=20),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=10)
    ),
}

# Closing the payment for a modification: the buyer is waiting for the answer, and until
# the close succeeds nothing has changed, so a channel that stays down refuses the change.
CHANNEL_TRY: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=20),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_attempts=3),
}

# A status query while waiting for the buyer: a failed poll is simply skipped.
CHANNEL_POLL: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(maximum_attempts=2),
}


def channel_create(payment_timeout: timedelta) -> dict[str, Any]:
    """Creating the payment is retried for as long as the buyer could still pay."""
    return {
        "start_to_close_timeout": timedelta(seconds=20),
        "schedule_to_close_timeout": payment_timeout,
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=10)
        ),
    }


def record_and_create(payment_timeout: timedelta) -> dict[str, Any]:
    """The order recorded and its payment created in one step (orders of version 3):
    retried as creating the payment is, for as long as the buyer could still pay; the
    database write and the channel's call together within the start-to-close."""
    return channel_create(payment_timeout) | {"start_to_close_timeout": timedelta(seconds=30)}


def webhook_delivery(retry: WebhookRetry) -> dict[str, Any]:
    """A merchant webhook: a regular activity (its retries cost no history), doubling the
    wait between attempts up to the maximum, with no attempt limit, within the window."""
    return {
        "start_to_close_timeout": timedelta(seconds=30),
        "schedule_to_close_timeout": timedelta(seconds=retry.window_seconds),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(milliseconds=retry.initial_ms),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(milliseconds=retry.maximum_ms),
            maximum_attempts=0,
        ),
    }
