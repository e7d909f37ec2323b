"""How the order saga reads its steps' failures, and how it refuses an update."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as StepTimeout

with workflow.unsafe.imports_passed_through():
    from domain.failures import (
        COUPON_REJECTED,
        MODIFICATION_FAILED,
        ORDER_ENDED,
        ORDER_INVALID,
        ORDER_NOT_MODIFIABLE,
    )
    from domain.modifiability import Refusal
    from workflows import options

# What a step's await raises when the step failed for good (or timed out).
StepFailed = options.StepFailed


def _reported(error: BaseException) -> ApplicationError | None:
    """The application error a failed step reported (an activity's is its cause)."""
    failure = error.cause if isinstance(error, ActivityError) else error
    return failure if isinstance(failure, ApplicationError) else None


def failure_type(error: ActivityError | ApplicationError | StepTimeout) -> str | None:
    """The application error type a failed step reported (None: no such type)."""
    failure = _reported(error)
    return failure.type if failure is not None else None


def ended_as(error: BaseException) -> tuple[str, str | None]:
    """The status and close reason an OrderEnded refusal found the order's record in."""
    failure = _reported(error)
    assert failure is not None and failure.type == ORDER_ENDED
    status, reason = failure.details
    return str(status), None if reason is None else str(reason)


def refused(
    message: str, error_type: str = ORDER_NOT_MODIFIABLE, *details: object
) -> ApplicationError:
    """A modification's refusal, as its update fails with it."""
    return ApplicationError(message, *details, type=error_type, non_retryable=True)


def refusal_error(refusal: Refusal) -> ApplicationError:
    """The update's failure for a refusal decided in domain.modifiability."""
    return refused(refusal.message, refusal.error_type, *refusal.details)


def repricing_refusal(error: ActivityError | ApplicationError | StepTimeout) -> ApplicationError:
    """The refusal of new lines the repricing would not price (the coupon, say)."""
    failure = error.cause if isinstance(error, ActivityError) else error
    if isinstance(failure, ApplicationError) and failure.type in (COUPON_REJECTED, ORDER_INVALID):
        return refused(failure.message, failure.type, *failure.details)
    return refused(f"the order could not be re-priced: {failure}", MODIFICATION_FAILED)
