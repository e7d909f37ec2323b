"""What we booked for a channel's day (the sweep's fee check) is the channel's business day,
the one its bill covers: Beijing's for the wallets, UTC's for the card gateway (both
backends)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from sqlmodel import Session, select

from db.sweeps import booked_day
from db.tables import Payment
from domain.reconciliation import day_window
from tests.db.conftest import Shop

DAY = date(2024, 2, 29)
BEFORE_BEIJING_MIDNIGHT = datetime(2024, 2, 28, 15, 59, tzinfo=UTC)  # 28th, 23:59 in Beijing
AFTER_BEIJING_MIDNIGHT = datetime(2024, 2, 28, 16, 0, tzinfo=UTC)  # 29th, 00:00 in Beijing
BEIJING_EVENING = datetime(2024, 2, 29, 15, 59, tzinfo=UTC)  # 29th, 23:59 in Beijing
NEXT_BEIJING_DAY = datetime(2024, 2, 29, 16, 0, tzinfo=UTC)  # 1 March in Beijing


def _payable(shop: Shop, order_id: str) -> int:
    with Session(shop.engine) as session:
        return session.exec(select(Payment.amount).where(Payment.order_id == order_id)).one()


def test_a_wallets_booked_day_is_its_beijing_day(shop: Shop) -> None:
    wallet = replace(shop, channel="wechatpay")
    inside = [wallet.paid_order(paid_at=AFTER_BEIJING_MIDNIGHT)]
    inside.append(wallet.paid_order(paid_at=BEIJING_EVENING))
    for outside in (BEFORE_BEIJING_MIDNIGHT, NEXT_BEIJING_DAY):
        wallet.paid_order(paid_at=outside)
    with Session(shop.engine) as session:
        booked = booked_day(session, "wechatpay", DAY)
    assert booked.gross == {"CNY": sum(_payable(shop, order) for order in inside)}
    assert day_window("wechatpay", DAY) == (AFTER_BEIJING_MIDNIGHT, NEXT_BEIJING_DAY)


def test_the_card_gateways_booked_day_is_the_utc_day(shop: Shop) -> None:
    card = replace(shop, channel="card")
    inside = card.paid_order(paid_at=AFTER_BEIJING_MIDNIGHT)  # the 28th by UTC
    card.paid_order(paid_at=datetime(2024, 2, 29, tzinfo=UTC))
    with Session(shop.engine) as session:
        booked = booked_day(session, "card", date(2024, 2, 28))
    assert booked.gross == {"CNY": _payable(shop, inside)}
