"""The notifier's outbox: a notification the receiver took is no longer owed, even when the
sandbox shuts down before the attempt is written to the delivery log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from channels.bank_wire import Payout, PayoutEvent
from sandbox.bank_notify import BankNotifications
from sandbox.notifier import Notifier
from sandbox.store import DeliveryAttempt, Store
from tests.receiver import Receiver


async def test_a_notice_taken_is_not_owed_though_a_shutdown_cuts_its_logging_short(
    tmp_path: Path, receiver: Receiver
) -> None:
    path = tmp_path / "sandbox.json"
    store = Store(path)
    inbox = receiver.inbox()
    logging_it = asyncio.Event()
    never = asyncio.Event()

    async def record(key: str, attempt: DeliveryAttempt) -> None:
        """The delivery log's write, waiting (for its lock, say) when the shutdown comes."""
        del key, attempt
        logging_it.set()
        await never.wait()

    payout = Payout(
        payout_id="po_1",
        merchant_id="m_1",
        amount=1999,
        currency="CNY",
        status="paid",
        failure_reason=None,
        bank_reference="ref_1",
    )
    event = PayoutEvent(id="evt_1", type="payout.paid", created=1, data=payout)
    async with httpx.AsyncClient(timeout=5) as client:
        notifier = Notifier(client, time_scale=0.0001, record=record, outbox=store)
        bank = BankNotifications(b"secret")
        owed = notifier.owe(inbox.url, event, bank)
        assert owed is not None
        store.hold_notice(owed.notice)  # as a change owing it would, in its journal line
        notifier.start(owed, bank)
        await asyncio.wait_for(logging_it.wait(), timeout=5)
        await notifier.aclose()  # the sandbox shuts down

    assert [request.answered for request in await inbox.received()] == [200]  # it was taken
    assert Store(path).held_notices() == []  # so the restart does not send it again
