"""When the sandbox's channels settle: a day is due `channel_sweep_lag_days` after it
ended (T+1, T+2), checked every `sandbox_sweep_check_seconds`; the control API settles a
day at once, whatever its cycle, for tests and demonstrations.

The card gateway pays a presentment currency in another when `settlement_fx` says so
(`sandbox.settlement_fx`), at the rate of the moment it settles.

A day's currency is settled once (`Store.sweep_day`): what moves at the channel on that day after
its settlement (only possible when the control API settled it before it ended) is never
paid over, as a real channel's settled day is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from channels.base import ChannelName
from domain.reconciliation import channel_day
from sandbox.settlement_fx import SettlementFx
from sandbox.store import Store
from sandbox.sweeps import SweepRecord

log = logging.getLogger(__name__)


class SweepService:
    def __init__(
        self,
        store: Store,
        fee_rates: Mapping[str, Decimal],
        lag_days: Mapping[str, int],
        check_seconds: float,
    ) -> None:
        self.store = store
        self._fee_rates = fee_rates
        self._lag_days = lag_days
        self._check_seconds = check_seconds
        self._task: asyncio.Task[None] | None = None
        self.settlement_fx = SettlementFx()

    async def settle(self, channel: ChannelName, day: date) -> list[SweepRecord]:
        conversions = None
        if channel is ChannelName.CARD:
            conversions = self.settlement_fx.rates_at(datetime.now(UTC))
        fee_rate = self._fee_rates[channel.value]
        return await self.store.sweep_day(channel, day, fee_rate, conversions)

    async def settle_due(self, now: datetime) -> list[SweepRecord]:
        """Settle every day whose cycle has come by `now` and that is not settled yet: a
        channel's day T is due on its day T+lag (its business days, as its bills')."""
        settled: list[SweepRecord] = []
        for channel in ChannelName:
            today = channel_day(channel.value, now)
            last_due = today - timedelta(days=self._lag_days.get(channel.value, 1))
            for day in sorted(await self.store.days_with_takings(channel)):
                if day <= last_due and not await self.store.sweeps(channel, day):
                    settled += await self.settle(channel, day)
        return settled

    def start(self) -> None:
        if self._check_seconds > 0:
            self._task = asyncio.create_task(self._run(), name="channel-sweeps")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._check_seconds)
            try:
                for sweep in await self.settle_due(datetime.now(UTC)):
                    log.info("channel %s swept %s %s", sweep.channel, sweep.day, sweep.currency)
            except Exception:  # a bug here must not stop the channels' other work
                log.exception("channel sweep check failed")
