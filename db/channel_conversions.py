"""The wallets' own conversions of foreign-priced orders (`ChannelConversion`).

An overseas shop prices in HKD, say; its Chinese buyer pays CNY through Alipay or WeChat
Pay, which converts at its own rate and settles to us in HKD. What the channel reports
(the CNY charged or given back, its rate) is kept here beside the payment and each
refund, keyed, so a repeated report records once. Nothing is booked from it: the
channel, not we, held the currency, so it is no FX position of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, bindparam
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from db.tables import ChannelConversion
from db.writes import insert_ignore


def payment_conversion_id(order_id: str, attempt: int) -> str:
    return f"payment:{order_id}:{attempt}"


def refund_conversion_id(refund_id: str) -> str:
    return f"refund:{refund_id}"


def record_conversion(
    session: Session,
    *,
    key: str,
    order_id: str,
    channel: str,
    price: tuple[int, str],
    payer: tuple[int, str],
    channel_rate: Decimal,
    refund_id: str | None = None,
) -> ChannelConversion | None:
    """Keep what the channel reported under `key` (once); None when there is nothing to
    keep (a price in the payer's own currency, or nothing converted)."""
    (price_amount, price_currency), (payer_amount, payer_currency) = price, payer
    if price_currency == payer_currency or price_amount <= 0 or payer_amount <= 0:
        return None
    # The notify route and the worker may report the same refund at once: the first wins.
    insert_ignore(
        session,
        ChannelConversion,
        {
            "id": key,
            "order_id": order_id,
            "kind": "refund" if refund_id is not None else "payment",
            "refund_id": refund_id,
            "channel": channel,
            "price_currency": price_currency,
            "price_amount": price_amount,
            "payer_currency": payer_currency,
            "payer_amount": payer_amount,
            "channel_rate": str(channel_rate),
            "created_at": datetime.now(UTC),
        },
    )
    return session.get(ChannelConversion, key)


def _conversions(of_order: ColumnElement[bool]) -> SelectOfScalar[ChannelConversion]:
    return (
        select(ChannelConversion)
        .where(of_order)
        .order_by(col(ChannelConversion.kind), col(ChannelConversion.created_at))
    )


# Built once (every read of an order asks): see db.payments. A page's `order_ids` expand
# to its ids, a cost paid on every run (SQLAlchemy renders the statement again), so one
# order's read has a statement of its own.
_CONVERSIONS_OF_ORDER = _conversions(col(ChannelConversion.order_id) == bindparam("order_id"))
_CONVERSIONS_OF_ORDERS = _conversions(
    col(ChannelConversion.order_id).in_(bindparam("order_ids", expanding=True))
)


def order_conversions(session: Session, order_id: str) -> list[ChannelConversion]:
    """The order's conversions by the channel: its payment first, then its refunds."""
    return list(session.exec(_CONVERSIONS_OF_ORDER, params={"order_id": order_id}).all())


def conversions_of_orders(
    session: Session, order_ids: Sequence[str]
) -> dict[str, list[ChannelConversion]]:
    """`order_conversions` of each of the orders that has any, in one query."""
    if len(order_ids) == 1:
        return {order_ids[0]: order_conversions(session, order_ids[0])}
    by_order: dict[str, list[ChannelConversion]] = {}
    rows = session.exec(_CONVERSIONS_OF_ORDERS, params={"order_ids": list(order_ids)})
    for row in rows:
        by_order.setdefault(row.order_id, []).append(row)
    return by_order
