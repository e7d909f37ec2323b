"""The bank activity of a channel's sweep: what the channel paid into our account."""

from __future__ import annotations

from temporalio import activity

from activities.errors import CHANNEL_UNAVAILABLE, retryable_error
from channels.bank import BankTransferAdapter, ChannelTransfers
from channels.errors import ChannelUnavailable
from domain.sweeps import ChannelDay


class SweepCalls:
    def __init__(self, bank: BankTransferAdapter) -> None:
        self._bank = bank

    @activity.defn
    async def incoming_transfers(self, day: ChannelDay) -> ChannelTransfers:
        """The channel's credited transfers for its day (none yet: an empty list)."""
        try:
            return await self._bank.incoming_transfers(day.channel, day.day)
        except ChannelUnavailable as error:
            raise retryable_error(CHANNEL_UNAVAILABLE, error.message) from None
