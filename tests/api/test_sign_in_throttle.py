"""Who the sign-in throttle stops: a guesser at one account from their own address, and
guessing spread over many addresses; not the account's owner signing in from elsewhere
while a stranger is stopped. (One address trying many accounts: test_accounts.py.)"""

from __future__ import annotations

import secrets

import pytest

from api.auth.rate_limit import Throttle, TooManyRequests


def _account() -> str:
    return f"{secrets.token_hex(8)}@example.com"


def test_a_stranger_guessing_cannot_lock_the_owner_out_from_elsewhere() -> None:
    throttle = Throttle("5/minute", "30/minute")
    account, stranger, owner = _account(), "203.0.113.7", "198.51.100.20"
    for _ in range(5):
        throttle.hit("sign-in", account, stranger)
    with pytest.raises(TooManyRequests) as refused:
        throttle.hit("sign-in", account, stranger)  # the stranger's sixth in the minute
    assert 1 <= refused.value.retry_after <= 60

    for _ in range(5):  # the owner, from home, as often as the stranger could
        throttle.hit("sign-in", account, owner)


def test_guessing_from_many_addresses_meets_the_accounts_ceiling() -> None:
    throttle = Throttle("5/minute", "30/minute", per_account="12/hour")
    account = _account()
    for bot in range(4):
        for _ in range(3):
            throttle.hit("sign-in", account, f"192.0.2.{bot}")
    with pytest.raises(TooManyRequests) as refused:
        throttle.hit("sign-in", account, "192.0.2.99")  # a fresh address, the 13th try
    assert refused.value.retry_after > 60  # the ceiling's window is the hour
