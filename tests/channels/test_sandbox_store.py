"""The sandbox store's journal: its state survives a restart, a write costs the same with a
long history, a crash mid-write loses only that write, and the file is the user's alone."""

from __future__ import annotations

import json
import stat
from dataclasses import asdict
from pathlib import Path

from channels.base import ChannelName
from sandbox.events import payment_event
from sandbox.notices import HeldNotice, Owed
from sandbox.protocol import Event, PaymentCreate, RefundCreate
from sandbox.store import PaymentRecord, Store


def _payment(number: int) -> PaymentCreate:
    return PaymentCreate(
        out_trade_no=f"order-{number:06d}",
        merchant_id="m_1",
        amount=1999,
        currency="CNY",
        description="Tea",
        notify_url="http://127.0.0.1/notify",
    )


async def _pay_one(store: Store, number: int) -> None:
    payment = await store.create_payment(ChannelName.ALIPAY, _payment(number))
    await store.mark_paid(payment.key, force=False)


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    store = Store(path)
    await _pay_one(store, 1)
    pending = await store.create_payment(ChannelName.WECHATPAY, _payment(2))
    refund, _ = await store.create_refund(
        ChannelName.ALIPAY,
        RefundCreate(
            refund_id="r_1", out_trade_no="order-000001", amount=500, currency="CNY", reason="x"
        ),
    )

    again = Store(path)

    paid = await again.payment((ChannelName.ALIPAY, "order-000001"))
    assert paid.status == "paid" and paid.txn_id is not None
    assert await again.payment(pending.key) == pending
    assert await again.payment_by_id(ChannelName.WECHATPAY, pending.payment_id) == pending
    assert await again.refund((ChannelName.ALIPAY, "r_1")) == refund
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _bytes_written_by_this_process() -> int:
    """The kernel's count of bytes this process passed to write() (Linux's /proc)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


async def _bytes_to_pay_one(store: Store, number: int) -> int:
    before = _bytes_written_by_this_process()
    await _pay_one(store, number)
    return _bytes_written_by_this_process() - before


async def test_a_write_costs_the_same_with_a_long_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandbox.json")
    await _pay_one(store, 0)
    early = await _bytes_to_pay_one(store, 1)
    for number in range(2, 300):
        await _pay_one(store, number)

    late = await _bytes_to_pay_one(store, 300)

    assert 0 < late <= early + 16  # two lines (created, paid), not the whole history


async def test_a_write_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    await _pay_one(Store(path), 1)
    with path.open("ab") as file:
        file.write(b'{"t":"payments","r":{"chan')  # the process died mid-write

    again = Store(path)

    assert (await again.payment((ChannelName.ALIPAY, "order-000001"))).status == "paid"
    await _pay_one(again, 2)  # and it goes on writing whole lines after compaction
    assert (await Store(path).payment((ChannelName.ALIPAY, "order-000002"))).status == "paid"


async def test_a_notice_owed_survives_a_restart_until_it_is_released(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    store = Store(path)
    owed = HeldNotice("evt_1", "http://127.0.0.1/notify", "alipay", {"id": "evt_1"})
    store.hold_notice(owed)
    store.hold_notice(HeldNotice("evt_2", "http://127.0.0.1/notify", "card", {"id": "evt_2"}))
    store.release_notice("evt_2")

    again = Store(path)  # read back, and compacted

    assert again.held_notices() == [owed]
    again.release_notice("evt_1")
    assert Store(path).held_notices() == []


def _old_line(kind: str, record: dict[str, object], *, gone: bool = False) -> bytes:
    """A line as the journal wrote it before a change and its notice shared one."""
    entry = {"t": kind, "r": record, "gone": True} if gone else {"t": kind, "r": record}
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


async def test_a_journal_from_before_changes_shared_a_line_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    pending = {
        "channel": "alipay",
        "payment_id": "pay_1",
        "out_trade_no": "order-000001",
        "merchant_id": "m_1",
        "amount": 1999,
        "currency": "CNY",
        "description": "Tea",
        "notify_url": "http://127.0.0.1/notify",
        "status": "pending",
        "txn_id": None,
        "paid_at": None,
        "payer_amount": None,
        "payer_currency": None,
        "channel_rate": None,
    }
    paid = {**pending, "status": "paid", "txn_id": "txn_1", "paid_at": 1_700_000_000.0}
    owed = HeldNotice("evt_1", "http://127.0.0.1/notify", "alipay", {"id": "evt_1"})
    taken = {"event_id": "evt_0", "url": "http://127.0.0.1/notify", "protocol": "card"}
    path.write_bytes(
        _old_line("payments", pending)
        + _old_line("notices", {**taken, "event": {"id": "evt_0"}})
        + _old_line("payments", paid)  # paid, then its notice: two writes
        + _old_line("notices", asdict(owed))
        + _old_line("notices", {"event_id": "evt_0"}, gone=True)
    )

    store = Store(path)  # reads the old lines, and compacts them
    payment = await store.payment((ChannelName.ALIPAY, "order-000001"))
    second = await store.create_payment(ChannelName.ALIPAY, _payment(2))
    _, told = await store.mark_paid(  # a new line beside them: paid, and its notice
        second.key, force=False, tell=lambda p: Owed(p.notify_url, _succeeded(p), "alipay")
    )

    again = Store(path)
    assert await again.payment(payment.key) == payment
    assert (payment.status, payment.txn_id) == ("paid", "txn_1")
    assert (await again.payment(second.key)).status == "paid"
    assert told is not None and again.held_notices() == [owed, told.notice]


def _succeeded(payment: PaymentRecord) -> Event:
    return payment_event("payment.succeeded", payment)
