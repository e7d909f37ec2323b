"""Which failures fail a saga's database step for good: named business refusals only.

A bug (ValueError, TypeError, KeyError, a missing row) is retried until a fixed
worker runs it; it must never make a paid order compensate.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from activities.errors import MERCHANT_SUSPENDED, ORDER_GIVEN_BACK, business_error
from db.ledger import InsufficientFunds
from workflows import options


def test_a_database_step_gives_up_only_on_a_business_refusal() -> None:
    policy = options.DB_WRITE["retry_policy"]
    assert policy.non_retryable_error_types == [InsufficientFunds.__name__]
    assert policy.maximum_attempts == 0  # unlimited: a bug waits for its fix
    assert "schedule_to_close_timeout" not in options.DB_WRITE


def test_only_named_business_refusals_are_reasons_to_compensate() -> None:
    refused = business_error(MERCHANT_SUSPENDED, "merchant m is suspended")
    assert options.business_failure(refused) == MERCHANT_SUSPENDED
    # A payment taken after the saga began giving it back: the saga (a replay whose lost
    # task began compensating) compensates, as that task did; a stale try's is dropped.
    given_back = business_error(ORDER_GIVEN_BACK, "the order is refunding", "refunding")
    assert options.business_failure(given_back) == ORDER_GIVEN_BACK
    overdrawn = ApplicationError("merchant:m would go to -1", type=InsufficientFunds.__name__)
    assert options.business_failure(overdrawn) == "InsufficientFunds"
    for bug in ("ValueError", "TypeError", "KeyError", "NoResultFound", "UnbalancedEntry"):
        failure = ApplicationError("a bug", type=bug, non_retryable=True)
        assert options.business_failure(failure) is None, bug
