"""When the saga asks the channel about a payment it has not heard of yet.

The first query comes after a tenth of the payment timeout (between 1 s and
30 s), then the interval doubles up to 5 minutes: a lost notification is
found quickly without turning every order's history into a polling log.
"""

from __future__ import annotations

from datetime import timedelta

MIN_FIRST_POLL = timedelta(seconds=1)
MAX_FIRST_POLL = timedelta(seconds=30)
MAX_POLL_INTERVAL = timedelta(minutes=5)


def first_poll_delay(payment_timeout: timedelta) -> timedelta:
    return min(max(payment_timeout / 10, MIN_FIRST_POLL), MAX_FIRST_POLL)


def next_poll_delay(previous: timedelta) -> timedelta:
    return min(previous * 2, MAX_POLL_INTERVAL)
