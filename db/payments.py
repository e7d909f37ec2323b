"""An order's payment attempts: one row each, the latest the order's current payment.

The first attempt is made with the order; each modification closes the pending one at
the channel and adds the next. Only the current attempt can be paid (a payment that
reaches a replaced one is refunded and never recorded here), so the paid attempt, if
any, is the current one.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from db.tables import Payment


def current_payment(session: Session, order_id: str) -> Payment | None:
    """The order's latest attempt, or None before its first checkout (or when nothing
    was ever to be paid at a channel)."""
    return session.exec(
        select(Payment).where(Payment.order_id == order_id).order_by(col(Payment.attempt).desc())
    ).first()


def payment_attempts(session: Session, order_id: str) -> list[Payment]:
    """Every attempt of the order, first to latest."""
    return list(
        session.exec(
            select(Payment).where(Payment.order_id == order_id).order_by(col(Payment.attempt))
        ).all()
    )
