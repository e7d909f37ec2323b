"""A change the sandbox makes and the notification it owes for it are one journal write:
wherever a crash cuts the journal short, the restarted sandbox has made the change and owes
its notification, or has done neither, as a real channel's payment and its queue entry are
one commit. Written apart, a cut between them keeps a payment paid with nothing owed to tell
of it, and a late payment, which no saga polls for, would never be told.

Each test makes one change in a sandbox whose receiver is refusing (so the notice stays
owed), then reads back every journal a crash could have left: cut after each line, and
halfway through each, of what the change wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from channels.base import ChannelName
from sandbox.errors import SandboxError
from sandbox.notifier import AnyEvent, Notifier, WireMessage
from sandbox.payout_service import PayoutService
from sandbox.protocol import PaymentCreate, PayoutCreate, RefundCreate
from sandbox.service import SandboxService
from sandbox.store import PaymentRecord, Store
from tests.receiver import Receiver

CARD = ChannelName.CARD


class PlainNotifications:
    """A channel that tells of every event as plain JSON, retrying an hour later."""

    name = "card"
    retry_delays: tuple[float, ...] = (3600.0,)
    event_types = frozenset(
        {
            "payment.succeeded",
            "payment.declined",
            "refund.succeeded",
            "refund.failed",
            "payout.paid",
        }
    )

    def render(self, event: AnyEvent) -> WireMessage:
        return WireMessage(event.model_dump_json().encode(), {})

    def accepted(self, status_code: int, body: bytes) -> bool:
        return status_code == 200


@dataclass(frozen=True)
class Sandbox:
    path: Path
    store: Store
    service: SandboxService
    payouts: PayoutService
    notify_url: str

    async def new_payment(self) -> PaymentRecord:
        request = PaymentCreate(
            out_trade_no="order-1",
            merchant_id="m_1",
            amount=1999,
            currency="CNY",
            description="Tea",
            notify_url=self.notify_url,
        )
        return await self.store.create_payment(CARD, request)

    async def paid_payment(self) -> PaymentRecord:
        return await self.service.pay(await self.new_payment())


@pytest_asyncio.fixture
async def sandbox(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Sandbox]:
    refusing = receiver.inbox(fail_first=1000)  # every notice stays owed
    path = tmp_path / "sandbox.json"
    store = Store(path)
    wire = PlainNotifications()
    async with httpx.AsyncClient(timeout=5) as client:
        notifier = Notifier(client, time_scale=1.0, record=store.record_delivery, outbox=store)
        service = SandboxService(
            store, notifier, "http://127.0.0.1", dict.fromkeys(ChannelName, wire)
        )
        payouts = PayoutService(store, notifier, wire, delay_ms=0)
        yield Sandbox(path, store, service, payouts, refusing.url)
        await notifier.aclose()


REFUND = RefundCreate(
    refund_id="r_1", out_trade_no="order-1", amount=500, currency="CNY", reason="x"
)


async def _refund_status(store: Store) -> str | None:
    try:
        return (await store.refund((CARD, "r_1"))).status
    except SandboxError:
        return None  # not made


@dataclass(frozen=True)
class Change:
    """One action that owes a notification: what comes before it, the action, whether a
    store read back has made it, and the type of the notification it owes."""

    before: Callable[[Sandbox], Awaitable[object]]
    act: Callable[[Sandbox], Awaitable[object]]
    made: Callable[[Store], Awaitable[bool]]
    tells: str


async def _pay(sandbox: Sandbox) -> object:
    return await sandbox.service.pay(await sandbox.store.payment((CARD, "order-1")))


async def _decline(sandbox: Sandbox) -> object:
    return await sandbox.service.decline(await sandbox.store.payment((CARD, "order-1")))


async def _paid(store: Store) -> bool:
    return (await store.payment((CARD, "order-1"))).status == "paid"


async def _declined(store: Store) -> bool:
    return (await store.payment((CARD, "order-1"))).status == "declined"


async def _refund_refused(sandbox: Sandbox) -> object:
    await sandbox.paid_payment()
    await sandbox.store.set_refund_mode("order-1", "fail")
    return None


async def _refund_pending(sandbox: Sandbox) -> object:
    await sandbox.paid_payment()
    await sandbox.store.set_refund_mode("order-1", "pending")
    return await sandbox.service.create_refund(CARD, REFUND)


async def _complete_refund(sandbox: Sandbox) -> object:
    return await sandbox.service.complete_refund(await sandbox.store.refund((CARD, "r_1")))


async def _refund_succeeded(store: Store) -> bool:
    return await _refund_status(store) == "succeeded"


async def _refund_failed(store: Store) -> bool:
    return await _refund_status(store) == "failed"


async def _payout_held(sandbox: Sandbox) -> object:
    await sandbox.store.set_payout_mode("m_1", "hold")  # settled by the test, not a timer
    request = PayoutCreate(
        payout_id="po_1",
        merchant_id="m_1",
        amount=1999,
        currency="CNY",
        beneficiary="acct-1",
        notify_url=sandbox.notify_url,
    )
    return await sandbox.payouts.create_payout(request)


async def _payout_paid(store: Store) -> bool:
    return (await store.payout("po_1")).status == "paid"


CHANGES = {
    "payment paid": Change(Sandbox.new_payment, _pay, _paid, "payment.succeeded"),
    "payment declined": Change(Sandbox.new_payment, _decline, _declined, "payment.declined"),
    "refund succeeded": Change(
        Sandbox.paid_payment,
        lambda sandbox: sandbox.service.create_refund(CARD, REFUND),
        _refund_succeeded,
        "refund.succeeded",
    ),
    "refund refused": Change(
        _refund_refused,
        lambda sandbox: sandbox.service.create_refund(CARD, REFUND),
        _refund_failed,
        "refund.failed",
    ),
    "pending refund completed": Change(
        _refund_pending, _complete_refund, _refund_succeeded, "refund.succeeded"
    ),
    "payout paid": Change(
        _payout_held,
        lambda sandbox: sandbox.payouts.settle("po_1", "paid"),
        _payout_paid,
        "payout.paid",
    ),
}


def cut_points(journal: bytes, start: int) -> list[int]:
    """Where a crash could cut what was written after `start`: at each line's end (between
    two writes) and halfway through each line (a write torn)."""
    points = {start}
    line_start = start
    for end, byte in enumerate(journal[start:], start=start + 1):
        if byte == ord("\n"):
            points |= {(line_start + end) // 2, end}
            line_start = end
    return sorted(points)


@pytest.mark.parametrize("change", list(CHANGES.values()), ids=list(CHANGES))
async def test_a_crash_keeps_a_change_and_its_notice_or_neither(
    change: Change, sandbox: Sandbox, tmp_path: Path
) -> None:
    await change.before(sandbox)
    start = sandbox.path.stat().st_size
    await change.act(sandbox)
    journal = sandbox.path.read_bytes()

    seen: dict[int, tuple[bool, bool]] = {}
    for cut in cut_points(journal, start):
        left = tmp_path / f"cut-{cut}.json"
        left.write_bytes(journal[:cut])
        Store(left)  # the restart: reads what the crash left, and compacts it
        restarted = Store(left)  # what it compacted is what the next restart reads
        owed = [notice.event["type"] for notice in restarted.held_notices()]
        seen[cut] = (await change.made(restarted), change.tells in owed)

    assert seen[start] == (False, False) and seen[len(journal)] == (True, True)
    assert {cut: state for cut, state in seen.items() if state[0] != state[1]} == {}
