"""Whose objects a caller may see. An object outside the caller's scope is answered
exactly as one that does not exist (404), so ids cannot be probed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from api.auth.caller import Caller, Role, checked_in
from api.errors import NotFound
from db.tables import Order

# Built once, not Session.get's query built per call: about 40 us of CPU less a read, and
# every read of an order begins here (see db.payments). The sessions that call this are new,
# so Session.get's one advantage, an order already in the session, never applied.
_ORDER = select(Order).where(col(Order.id) == bindparam("order_id"))


def sees_order(caller: Caller, order: Order) -> bool:
    if caller.role == Role.OPERATOR:
        return True
    if caller.role == Role.MERCHANT:
        return order.merchant_id == caller.id
    return order.buyer_id is not None and order.buyer_id == caller.id


def order_for(session: Session, caller: Caller, order_id: str) -> Order:
    """The caller's order (its credential checked here first, if its route left that to
    its session: api.auth.caller.checked_in), else 404."""
    caller = checked_in(session, caller)
    order = session.exec(_ORDER, params={"order_id": order_id}).first()
    if order is None or not sees_order(caller, order):
        raise NotFound("order_not_found", f"no order {order_id}", "id")
    return order


def scoped_orders(query: Any, caller: Caller) -> Any:
    """`query` over Order narrowed to the caller's orders."""
    if caller.role == Role.MERCHANT:
        return query.where(Order.merchant_id == caller.id)
    if caller.role == Role.BUYER:
        return query.where(Order.buyer_id == caller.id)
    return query


def check_merchant(caller: Caller, merchant_id: str) -> None:
    """A merchant reaches only its own merchant-scoped routes; operators reach all."""
    if caller.role == Role.MERCHANT and caller.id != merchant_id:
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", "merchant_id")
