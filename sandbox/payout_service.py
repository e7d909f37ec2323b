"""What each payout action does: a store transition, then the notification it causes.

A bank settles a transfer some time after accepting it. Here a payout is
created pending and, unless its merchant's behaviour is `hold`, an asyncio
timer settles it `delay_ms` later: paid (with a bank reference) for `succeed`,
failed with `account_frozen` for `fail`. The timers live in memory and are
cancelled on shutdown, so a payout pending at a restart stays pending until
the control API completes or fails it; the stored record never claims an
outcome the bank did not reach.
"""

from __future__ import annotations

import asyncio
import logging

from sandbox.errors import SandboxError
from sandbox.events import payout_event
from sandbox.notifier import Notifier, NotifyProtocol
from sandbox.protocol import Payout, PayoutCreate, PayoutEventType
from sandbox.service import fail_if_faulted
from sandbox.store import PayoutOutcome, PayoutRecord, Store

log = logging.getLogger(__name__)

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
        self._timers: set[asyncio.Task[None]] = set()

    async def create_payout(self, request: PayoutCreate) -> Payout:
        """Create (or repeat) a payout; only a new one starts its settlement timer."""
        await fail_if_faulted(self.store, request.merchant_id)
        payout, created = await self.store.create_payout(request)
        if created:
            await self._schedule(payout)
        return payout_view(payout)

    async def get_payout(self, payout_id: str) -> Payout:
        payout = await self.store.payout(payout_id)
        await fail_if_faulted(self.store, payout.merchant_id)
        return payout_view(payout)

    async def settle(self, payout_id: str, outcome: PayoutOutcome) -> Payout:
        """Pay or fail a pending payout; only the call that changes it notifies."""
        payout, changed = await self.store.settle_payout(payout_id, outcome)
        view = payout_view(payout)
        if changed:
            event = payout_event(_EVENT_TYPE[outcome], view)
            self._notifier.send(payout.notify_url, event, self._protocol)
        return view

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
    )
