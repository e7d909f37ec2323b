"""When sagas ask about what they have not heard of: today's production timings by default."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from domain.polling import PollTimings
from settings import Settings

DEFAULTS = PollTimings()


@pytest.mark.parametrize(
    ("payment_timeout", "first_poll"),
    [
        (timedelta(seconds=2), timedelta(seconds=1)),  # a tenth, but never under a second
        (timedelta(minutes=15), timedelta(seconds=30)),  # nor over thirty
        (timedelta(minutes=2), timedelta(seconds=12)),
    ],
)
def test_the_first_payment_poll_is_a_tenth_of_the_timeout_within_bounds(
    payment_timeout: timedelta, first_poll: timedelta
) -> None:
    assert DEFAULTS.first_payment_poll(payment_timeout) == first_poll


def test_intervals_double_up_to_five_minutes_after_the_first_check() -> None:
    assert DEFAULTS.first_refund_check == timedelta(seconds=2)
    assert DEFAULTS.first_payout_poll == timedelta(seconds=5)
    assert DEFAULTS.next_poll(timedelta(seconds=2)) == timedelta(seconds=4)
    assert DEFAULTS.next_poll(timedelta(minutes=4)) == timedelta(minutes=5)


def test_settings_choose_the_timings_of_new_sagas(
    monkeypatch: pytest.MonkeyPatch, channel_credentials: dict[str, str]
) -> None:
    env = {"PAYSAGA_POLL__REFUND_FIRST_MS": "1000", "PAYSAGA_POLL__MAX_INTERVAL_MS": "2000"}
    for name, value in {**channel_credentials, **env}.items():
        monkeypatch.setenv(name, value)
    timings = Settings().poll  # as a process reads its environment
    assert timings.first_refund_check == timedelta(seconds=1)
    assert timings.next_poll(timedelta(seconds=8)) == timedelta(seconds=2)
    assert timings.first_payout_poll == DEFAULTS.first_payout_poll  # the rest as in production


def test_a_timing_of_zero_is_refused() -> None:
    with pytest.raises(ValidationError):
        PollTimings(refund_first_ms=0)
