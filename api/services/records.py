"""Synchronous database reads and writes behind the routes (run in a worker thread)."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from sqlmodel import Session

from api.errors import NotFound
from api.schemas import PaymentAttempts
from api.services.order_views import payment_out
from db.payments import payment_attempts
from db.tables import Order


def new_id(prefix: str) -> str:
    """A time-ordered id: newer ids sort after older ones, which keeps listing pages stable."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"


def now() -> datetime:
    return datetime.now(UTC)


def get_order(session: Session, order_id: str) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("order_not_found", f"no order {order_id}", "id")
    return order


def attempts_out(session: Session, order: Order) -> PaymentAttempts:
    return PaymentAttempts(
        data=[payment_out(payment) for payment in payment_attempts(session, order.id)]
    )
