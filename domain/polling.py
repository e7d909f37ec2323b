"""When a saga asks a channel or the bank about something it has not heard of yet.

The first payment query comes after a tenth of the payment timeout (between 1 s
and 30 s), a refund's first check after 2 s, a payout's after 5 s; then each
interval doubles up to 5 minutes: a lost notification is found quickly without
turning every history into a polling log.

The values travel in each saga's input, never read by workflow code from its
environment: a saga keeps the timings it started with, and a history recorded
before they were inputs replays with the defaults it ran with. Settings choose
them for new sagas (`PAYSAGA_POLL_*`); tests shorten them.

A saga that keeps polling (a refund pending at the channel for weeks, a payout the
bank sits on) continues as new after `polls_per_run` polls, carrying what it waits
for, so no history grows without bound.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

# Polls a run makes before it continues as new. A poll costs about six history events
# (timer started and fired, a workflow task's three, the query's marker), so a run stays
# near 1,800 events: far below Temporal's hard limit of 51,200 events (and its
# suggestion to continue as new, at 10,240), with room for the signals and updates
# that arrive meanwhile. At the 5-minute maximum interval that is one run a day.
POLLS_PER_RUN = 300


class PollTimings(BaseModel):
    model_config = ConfigDict(frozen=True)

    payment_first_min_ms: int = Field(default=1_000, ge=1)
    payment_first_max_ms: int = Field(default=30_000, ge=1)
    refund_first_ms: int = Field(default=2_000, ge=1)
    payout_first_ms: int = Field(default=5_000, ge=1)
    max_interval_ms: int = Field(default=300_000, ge=1)
    polls_per_run: int = Field(default=POLLS_PER_RUN, ge=1)

    def first_payment_poll(self, payment_timeout: timedelta) -> timedelta:
        floor = timedelta(milliseconds=self.payment_first_min_ms)
        return min(max(payment_timeout / 10, floor), _ms(self.payment_first_max_ms))

    @property
    def first_refund_check(self) -> timedelta:
        return _ms(self.refund_first_ms)

    @property
    def first_payout_poll(self) -> timedelta:
        return _ms(self.payout_first_ms)

    def next_poll(self, previous: timedelta) -> timedelta:
        return min(previous * 2, _ms(self.max_interval_ms))


def _ms(milliseconds: int) -> timedelta:
    return timedelta(milliseconds=milliseconds)
