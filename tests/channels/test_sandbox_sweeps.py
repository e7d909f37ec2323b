"""A sandbox channel settles a day: one transfer per currency of what it took, less what
it paid back and its fees (a refund returns its share of the fee), once, and remembered
across a restart. The auto-settler waits for the channel's cycle (T+1, T+2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from channels.base import ChannelName
from sandbox.protocol import PaymentCreate, RefundCreate
from sandbox.store import Store
from sandbox.sweep_service import SweepService

RATE = Decimal("0.029")
TODAY = datetime.now(UTC).date()


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
    assert await sweeps.settle_due(TODAY + timedelta(days=1)) == []  # card is T+2
    [settled] = await sweeps.settle_due(TODAY + timedelta(days=2))
    assert (settled.day, settled.net) == (TODAY.isoformat(), 10000 - 290)
    assert await sweeps.settle_due(TODAY + timedelta(days=3)) == []  # settled once
