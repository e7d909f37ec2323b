"""Proof that every minor unit is accounted for, read straight from the database.

    trial balance      the postings of every currency sum to zero
    account balances   each account's stored balance equals the sum of its postings
    every paid order   paid = refunded + refunds in flight + merchant share
                              + commission + channel fee
    every statement    opening + gross - fees - commission - refunds + returned
                              - payout = closing

The order identity compares two independent records: the payment and refund
rows the sagas write, and the ledger entries posted for the order.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func
from sqlmodel import Session, col, select

from db.tables import Account, JournalEntry, Order, Payment, Posting, Refund, Statement
from domain.ledger import AccountKind, account_parts
from domain.order_status import OrderStatus
from domain.refunds import RefundStatus

# Compensation moves an order's money in two steps (reverse the entry, then refund at
# the channel), so its identity holds again only once the compensation has finished.
_COMPENSATING = frozenset({OrderStatus.REFUNDING, OrderStatus.COMPENSATION_FAILED})
LATE_PAYMENT_REASON = "late_payment"  # refunds of money the order never took


def trial_balance(session: Session) -> dict[str, int]:
    rows = session.exec(
        select(Posting.currency, func.sum(Posting.amount)).group_by(col(Posting.currency))
    ).all()
    return {currency: int(total) for currency, total in rows}


def account_drift(session: Session) -> list[str]:
    sums = dict(
        session.exec(
            select(Posting.account, func.sum(Posting.amount)).group_by(col(Posting.account))
        ).all()
    )
    return [
        f"{account.id}: stored {account.balance}, postings {int(sums.get(account.id, 0))}"
        for account in session.exec(select(Account))
        if account.balance != int(sums.get(account.id, 0))
    ]


def order_breakdown(session: Session, order_id: str) -> dict[str, int]:
    """The order's money by where it is now, from its ledger entries (credit-positive)."""
    rows = session.exec(
        select(Posting.account, Posting.amount)
        .join(JournalEntry, col(JournalEntry.id) == Posting.entry_id)
        .where(JournalEntry.order_id == order_id)
    ).all()
    parts: dict[str, int] = defaultdict(int)
    for account, amount in rows:
        parts[account_parts(account)[0].value] -= amount
    return {
        "merchant": parts[AccountKind.MERCHANT_PENDING] + parts[AccountKind.MERCHANT_AVAILABLE],
        "commission": parts[AccountKind.PLATFORM_COMMISSION],
        "channel_fee": parts[AccountKind.CHANNEL_FEE],
        "refunds_in_flight": parts[AccountKind.REFUNDS_IN_FLIGHT],
        "clearing": -parts[AccountKind.CHANNEL_CLEARING],
    }


def order_problems(session: Session, order: Order, payment: Payment) -> list[str]:
    refunds = session.exec(
        select(Refund).where(Refund.order_id == order.id, Refund.reason != LATE_PAYMENT_REASON)
    ).all()
    refunded = sum(r.amount for r in refunds if r.status == RefundStatus.SUCCEEDED)
    pending = sum(
        r.amount for r in refunds if r.status == RefundStatus.PENDING and r.requested_by != "system"
    )
    parts = order_breakdown(session, order.id)
    held = parts["merchant"] + parts["commission"] + parts["channel_fee"]
    problems = []
    if payment.amount != refunded + parts["refunds_in_flight"] + held:
        problems.append(f"order {order.id}: paid {payment.amount} != refunded {refunded} + {parts}")
    if parts["refunds_in_flight"] != pending:
        problems.append(f"order {order.id}: {pending} pending refunds, ledger says {parts}")
    return problems


def statement_problems(statement: Statement) -> list[str]:
    s = statement
    closing = (
        s.opening_balance
        + s.gross_amount
        - s.channel_fee_amount
        - s.commission_amount
        - s.refunded_amount
        + s.returned_amount
        - s.payout_amount
    )
    if closing != s.closing_balance:
        return [f"statement {s.id}: numbers add up to {closing}, closing says {s.closing_balance}"]
    return []


def ledger_problems(session: Session) -> list[str]:
    """Every broken invariant, described; an empty list is a clean bill."""
    problems = [f"trial balance {c}: {t}" for c, t in trial_balance(session).items() if t]
    problems += account_drift(session)
    paid = session.exec(
        select(Order, Payment)
        .join(Payment, col(Payment.order_id) == Order.id)
        .where(Payment.status == "paid", col(Order.status).not_in(_COMPENSATING))
    ).all()
    for order, payment in paid:
        problems += order_problems(session, order, payment)
    for statement in session.exec(select(Statement)):
        problems += statement_problems(statement)
    return problems
