"""An order's payment attempts: one row each, the latest the order's current payment.

The first attempt is made with the order; each modification closes the pending one at
the channel and adds the next. Only the current attempt can be paid (a payment that
reaches a replaced one is refunded and never recorded here), so the paid attempt, if
any, is the current one.
"""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from db.tables import Payment

# Built once: SQLAlchemy keys its compiled-statement cache on a key it generates for each
# statement object and keeps on it, so one built per call paid for building and keying it
# again (about half the CPU of these reads; every read of an order asks for its payment).
_ATTEMPTS = select(Payment).where(col(Payment.order_id) == bindparam("order_id"))
_FIRST_TO_LATEST = _ATTEMPTS.order_by(col(Payment.attempt))
_LATEST = _ATTEMPTS.order_by(col(Payment.attempt).desc()).limit(1)


def current_payment(session: Session, order_id: str) -> Payment | None:
    """The order's latest attempt, or None before its first checkout (or when nothing
    was ever to be paid at a channel)."""
    return session.exec(_LATEST, params={"order_id": order_id}).first()


def payment_attempts(session: Session, order_id: str) -> list[Payment]:
    """Every attempt of the order, first to latest."""
    return list(session.exec(_FIRST_TO_LATEST, params={"order_id": order_id}).all())
