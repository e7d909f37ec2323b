"""A sandbox channel settles a day: one transfer per currency of what it took, less what
it paid back and its fees (a refund returns its share of the fee), once, and remembered
across a restart. The auto-settler waits for the channel's cycle (T+1, T+2). The day is
the channel's business day, the one its bill covers: Beijing's for the wallets."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from channels.base import ChannelName
from domain.reconciliation import CHINA_STANDARD_TIME, channel_day
from sandbox.bill_entries import day_window
from sandbox.protocol import PaymentCreate, RefundCreate
from sandbox.store import Store
from sandbox.sweep_service import SweepService
from sandbox.sweeps import day_sweeps

RATE = Decimal("0.029")
NOW = datetime.now(UTC)
TODAY = NOW.date()  # the card gateway's day (UTC)


async def _paid(store: Store, reference: str, amount: int, currency: str = "CNY") -> None:
    request = PaymentCreate(
        out_trade_no=reference,
        merchant_id="m_1",
        amount=amount,
        currency=currency,
        description="Tea",
        notify_url="http://127.0.0.1/notify",
    )
    payment = await store.create_payment(ChannelName.CARD, request)
    await store.mark_paid(payment.key, force=False)


async def _refunded(store: Store, refund_id: str, reference: str, amount: int) -> None:
    request = RefundCreate(
        refund_id=refund_id, out_trade_no=reference, amount=amount, currency="CNY", reason="x"
    )
    await store.create_refund(ChannelName.CARD, request)


async def test_a_day_is_paid_over_net_of_refunds_and_fees_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandbox.json")
    await _paid(store, "o1", 10000)  # fee 290
    await _paid(store, "o2", 3333)  # fee 97 (96.657 rounds half up)
    await _paid(store, "o3", 500, currency="USD")  # fee 15 (14.5 rounds half up)
    await _refunded(store, "r1", "o2", 1111)  # a third: returns 32 (32.33) of the 97
    await _refunded(store, "r2", "o2", 2222)  # the rest: returns the 65 left

    [cny, usd] = await store.sweep_day(ChannelName.CARD, TODAY, RATE)
    assert (cny.gross, cny.refunds, cny.fees) == (13333, 3333, 290)
    assert cny.net == 13333 - 3333 - 290
    assert (usd.currency, usd.gross, usd.fees, usd.net) == ("USD", 500, 15, 485)

    await _paid(store, "o4", 700)  # after the day was settled: never paid over for it
    assert await store.sweep_day(ChannelName.CARD, TODAY, RATE) == [cny, usd]
    assert await Store(tmp_path / "sandbox.json").sweeps(ChannelName.CARD, TODAY) == [cny, usd]


async def test_the_settler_waits_for_each_channels_cycle(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandbox.json")
    await _paid(store, "o1", 10000)
    lags = {"alipay": 1, "wechatpay": 1, "card": 2}
    sweeps = SweepService(store, {"card": RATE}, lags, check_seconds=0)
    assert await sweeps.settle_due(NOW + timedelta(days=1)) == []  # card is T+2
    [settled] = await sweeps.settle_due(NOW + timedelta(days=2))
    assert (settled.day, settled.net) == (TODAY.isoformat(), 10000 - 290)
    assert await sweeps.settle_due(NOW + timedelta(days=3)) == []  # settled once


# 17:00 UTC on the 29th is 01:00 on the 30th in Beijing.
EVENING_UTC = datetime(2026, 11, 29, 17, tzinfo=UTC)


async def test_a_wallet_settles_its_beijing_day_the_day_its_bill_covers(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandbox.json")
    evening = EVENING_UTC.timestamp()
    records = []
    for channel in (ChannelName.ALIPAY, ChannelName.CARD):
        request = PaymentCreate(
            out_trade_no=f"o-{channel}",
            merchant_id="m_1",
            amount=10000,
            currency="CNY",
            description="Tea",
            notify_url="http://127.0.0.1/notify",
        )
        payment = await store.create_payment(channel, request)
        records.append(replace(payment, status="paid", txn_id="t", paid_at=evening))
    alipay, card = records
    beijing_day, utc_day = date(2026, 11, 30), date(2026, 11, 29)

    [swept] = day_sweeps(ChannelName.ALIPAY, beijing_day, RATE, [alipay], [])
    assert (swept.day, swept.gross) == ("2026-11-30", 10000)
    assert day_sweeps(ChannelName.ALIPAY, utc_day, RATE, [alipay], []) == []
    # The bill desk puts it on the same day's bill.
    start, end = day_window(ChannelName.ALIPAY, beijing_day)
    assert start <= evening < end
    # The card gateway's day is UTC's, for its sweep and its bill alike.
    [card_swept] = day_sweeps(ChannelName.CARD, utc_day, RATE, [card], [])
    assert card_swept.day == "2026-11-29"
    start, end = day_window(ChannelName.CARD, utc_day)
    assert start <= evening < end


async def test_the_settler_counts_a_wallets_cycle_in_beijing_days(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandbox.json")
    request = PaymentCreate(
        out_trade_no="o1",
        merchant_id="m_1",
        amount=10000,
        currency="CNY",
        description="Tea",
        notify_url="http://127.0.0.1/notify",
    )
    payment = await store.create_payment(ChannelName.ALIPAY, request)
    await store.mark_paid(payment.key, force=False)
    day = channel_day("alipay", datetime.now(UTC))
    assert await store.days_with_takings(ChannelName.ALIPAY) == {day}
    sweeps = SweepService(store, {"alipay": RATE}, {"alipay": 1}, check_seconds=0)
    # T+1 by Beijing's calendar: due once Beijing's next day has begun, not before.
    next_day_starts = datetime.combine(day + timedelta(days=1), time(), CHINA_STANDARD_TIME)
    assert await sweeps.settle_due(next_day_starts - timedelta(seconds=1)) == []
    [settled] = await sweeps.settle_due(next_day_starts)
    assert (settled.channel, settled.day, settled.gross) == ("alipay", day.isoformat(), 10000)
