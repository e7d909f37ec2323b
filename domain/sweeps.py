"""A channel's sweep of one day into our bank account, as our books see it.

    ChannelSweepWorkflow(channel, day)   id channel-sweep-{channel}-{day}
      -> what we booked for the day (the currencies that moved, the fees we owe)
      -> ask the bank for the channel's transfers until every currency has one
      -> post each: bank +net, channel_fee +fees, clearing -(gross - refunds)
      -> the channel's fees against ours: a difference is reported and flagged

What we booked for a day at a channel: its payments paid that day (their captured
channel fee) and the refunds it confirmed that day (the fee each gave back: a requested
refund's share, a compensation's whole fee, nothing for a late payment, on which we
booked none). A day near midnight may fall on the other side at the channel; the fee
check then flags both days, and reconciliation matches them.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from domain.polling import PollTimings


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class ChannelDay(_Message):
    channel: str
    day: date


class ChannelSweepInput(_Message):
    channel: str
    day: date
    polling: PollTimings = PollTimings()
    next_check_ms: int | None = None  # set when continued as new: the next interval
    polls_left: int | None = None  # checks of the bank still allowed; None: no limit


class ChannelSweepsDue(_Message):
    """The Schedule's daily run: each channel's lag (T+1, T+2) in days."""

    lag_days: dict[str, int]
    polling: PollTimings = PollTimings()
    checks: int | None = None  # each sweep's `polls_left` (None in Schedules made before it)


class BookedDay(_Message):
    """What our records say the channel took on the day, per currency."""

    gross: dict[str, int] = Field(default_factory=dict)
    refunds: dict[str, int] = Field(default_factory=dict)
    fees: dict[str, int] = Field(default_factory=dict)

    @property
    def currencies(self) -> list[str]:
        return sorted(self.gross.keys() | self.refunds.keys())


class SweepOutcome(_Message):
    """One transfer posted, and the channel's fee against what we booked."""

    transfer_id: str
    currency: str
    gross: int
    fees: int
    refunds: int
    net: int
    booked_fees: int  # ours, like for like: converted as the transfer's fees when it is
    newly_posted: bool
    unrealised_orders: list[str] = Field(default_factory=list)  # converted, not realised
    # The currency the channel took the money in (the booked one): `currency` unless the
    # transfer converted it (None in results from before).
    taken_currency: str | None = None

    @property
    def fee_difference(self) -> int:
        """The channel's fee less ours: positive, it kept more than we booked."""
        return self.fees - self.booked_fees


class ChannelSweepResult(_Message):
    channel: str
    day: date
    transfers: list[SweepOutcome] = Field(default_factory=list)
    missing_currencies: list[str] = Field(default_factory=list)  # booked, never swept

    @property
    def fee_differences(self) -> dict[str, int]:
        """Per booked currency (a converted transfer's by the currency it took, so a plain
        and a converted transfer of one currency stay apart), in the transfer's currency."""
        return {
            t.taken_currency or t.currency: t.fee_difference
            for t in self.transfers
            if t.fee_difference
        }

    @property
    def needs_review(self) -> bool:
        unrealised = any(t.unrealised_orders for t in self.transfers)
        return bool(self.fee_differences or self.missing_currencies or unrealised)
