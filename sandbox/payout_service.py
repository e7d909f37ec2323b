"""What each payout action does: a store transition, then the notification it causes.

A bank settles a transfer some time after accepting it. Here a payout is
created pending and, unless its merchant's behaviour is `hold`, an asyncio
timer settles it `delay_ms` later: paid (with a bank reference) for `succeed`,
failed with `account_frozen` for `fail`. The timers live in memory and are
cancelled on shutdown, so a payout pending at a restart stays pending until
the control API completes or fails it; the stored record never claims an
outcome the bank did not reach.

A payout may ask to credit the beneficiary in another currency (`credit_currency`: the
merchant's settlement currency). The bank converts it when it accepts it, at its own
market's rate of that moment (`PAYOUT_FX_SEED`, which moves), by the one rounding rule
(`domain.fx.conversion.convert`), and the payout carries what it credited and the rate
from then on; a currency it has no market for is refused (`currency_not_supported`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Final

from domain.fx.conversion import Conversion, convert
from domain.fx.errors import RateMissing
from sandbox.errors import SandboxError
from sandbox.events import payout_event
from sandbox.notices import Owed
from sandbox.notifier import Notifier, NotifyProtocol
from sandbox.protocol import Payout, PayoutCreate, PayoutEventType
from sandbox.service import fail_if_faulted
from sandbox.settlement_fx import SettlementFx
from sandbox.store import PayoutOutcome, PayoutRecord, Store, credit_currency

log = logging.getLogger(__name__)

PAYOUT_FX_SEED: Final = "sandbox-bank-payouts"
"""The bank's own market for converting payouts: neither our quotes' nor the channels'."""

_EVENT_TYPE: dict[PayoutOutcome, PayoutEventType] = {
    "paid": "payout.paid",
    "failed": "payout.failed",
}


class PayoutService:
    def __init__(
        self, store: Store, notifier: Notifier, protocol: NotifyProtocol, *, delay_ms: int
    ) -> None:
        self.store = store
        self._notifier = notifier
        self._protocol = protocol
        self._delay_s = delay_ms / 1000
        self._fx = SettlementFx(PAYOUT_FX_SEED, source="sandbox-bank-payouts")
        self._timers: set[asyncio.Task[None]] = set()

    async def create_payout(self, request: PayoutCreate) -> Payout:
        """Create (or repeat) a payout; only a new one starts its settlement timer."""
        await fail_if_faulted(self.store, request.merchant_id)
        payout, created = await self.store.create_payout(request, lambda: self._credit(request))
        if created:
            await self._schedule(payout)
        return payout_view(payout)

    def _credit(self, request: PayoutCreate) -> Conversion | None:
        """A payout credited in another currency: converted at the bank's market rate of
        now by the one rounding rule; a currency the bank does not trade, or an amount
        worth nothing once converted, is refused."""
        target = credit_currency(request)
        if target is None:
            return None
        try:
            rate = self._fx.market_rate(request.currency, target, datetime.now(UTC))
        except RateMissing:
            raise SandboxError(400, "currency_not_supported", f"no {target} payouts") from None
        credit = convert(request.amount, request.currency, target, rate)
        if credit.target_amount <= 0:
            raise SandboxError(400, "amount_too_small", f"worth nothing in {target}")
        return credit

    async def get_payout(self, payout_id: str) -> Payout:
        payout = await self.store.payout(payout_id)
        await fail_if_faulted(self.store, payout.merchant_id)
        return payout_view(payout)

    async def settle(self, payout_id: str, outcome: PayoutOutcome) -> Payout:
        """Pay or fail a pending payout; only the call that changes it notifies (the notice
        written with the payout, in one journal line)."""

        def tell(settled: PayoutRecord) -> Owed | None:
            event = payout_event(_EVENT_TYPE[outcome], payout_view(settled))
            return self._notifier.owe(settled.notify_url, event, self._protocol)

        payout, owed = await self.store.settle_payout(payout_id, outcome, tell)
        self._notifier.start(owed, self._protocol)
        return payout_view(payout)

    async def aclose(self) -> None:
        """Cancel settlement timers still running (on shutdown)."""
        timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)

    async def _schedule(self, payout: PayoutRecord) -> None:
        mode = await self.store.payout_mode(payout.merchant_id)
        if mode == "hold":
            return
        outcome: PayoutOutcome = "paid" if mode == "succeed" else "failed"
        timer = asyncio.create_task(
            self._settle_later(payout.payout_id, outcome), name=f"settle-{payout.payout_id}"
        )
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    async def _settle_later(self, payout_id: str, outcome: PayoutOutcome) -> None:
        await asyncio.sleep(self._delay_s)
        try:
            await self.settle(payout_id, outcome)
        except SandboxError:
            # The control API settled it the other way first; that outcome stands.
            log.info("payout %s was settled before its timer", payout_id)


def payout_view(payout: PayoutRecord) -> Payout:
    return Payout(
        payout_id=payout.payout_id,
        merchant_id=payout.merchant_id,
        amount=payout.amount,
        currency=payout.currency,
        status=payout.status,
        failure_reason=payout.failure_reason,
        bank_reference=payout.bank_reference,
        credit_currency=payout.credit_currency,
        credited_amount=payout.credited_amount,
        credit_rate=payout.credit_rate,
    )
