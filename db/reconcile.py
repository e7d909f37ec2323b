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
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from db.fx_books import fx_order_problems, quoted_order_ids
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


def account_drift(session: Session, accounts: Collection[str] | None = None) -> list[str]:
    """Accounts whose stored balance is not the sum of their postings (all, or `accounts`)."""
    sums_query = select(Posting.account, func.sum(Posting.amount)).group_by(col(Posting.account))
    accounts_query = select(Account)
    if accounts is not None:
        sums_query = sums_query.where(col(Posting.account).in_(accounts))
        accounts_query = accounts_query.where(col(Account.id).in_(accounts))
    sums = dict(session.exec(sums_query).all())
    return [
        f"{account.id}: stored {account.balance}, postings {int(sums.get(account.id, 0))}"
        for account in session.exec(accounts_query)
        if account.balance != int(sums.get(account.id, 0))
    ]


def order_breakdown(session: Session, order_id: str) -> dict[str, int]:
    """The order's money by where it is now, from its ledger entries (credit-positive)."""
    return _breakdowns(session, [order_id]).get(order_id, _breakdown({}))


def _breakdowns(
    session: Session, order_ids: Collection[str] | None = None
) -> dict[str, dict[str, int]]:
    """Per order (all, or `order_ids`), its postings summed by account kind: one query."""
    query = (
        select(JournalEntry.order_id, Posting.account, func.sum(Posting.amount))
        .join(JournalEntry, col(JournalEntry.id) == Posting.entry_id)
        .where(col(JournalEntry.order_id).is_not(None))
        .group_by(col(JournalEntry.order_id), col(Posting.account))
    )
    if order_ids is not None:
        query = query.where(col(JournalEntry.order_id).in_(order_ids))
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for order, account, total in session.exec(query).all():
        assert order is not None
        by_kind[order][account_parts(account)[0].value] -= int(total)
    return {order: _breakdown(kinds) for order, kinds in by_kind.items()}


def _breakdown(by_kind: dict[str, int]) -> dict[str, int]:
    def kind(k: AccountKind) -> int:
        return by_kind.get(k.value, 0)

    return {
        "merchant": kind(AccountKind.MERCHANT_PENDING) + kind(AccountKind.MERCHANT_AVAILABLE),
        "commission": kind(AccountKind.PLATFORM_COMMISSION),
        "channel_fee": kind(AccountKind.CHANNEL_FEE),
        "refunds_in_flight": kind(AccountKind.REFUNDS_IN_FLIGHT),
        "clearing": -kind(AccountKind.CHANNEL_CLEARING),
    }


def _refund_totals(
    session: Session, order_ids: Collection[str] | None = None
) -> dict[str, tuple[int, int]]:
    """Per order: (succeeded refunds, pending requested refunds) of the order's own payment."""
    query = select(Refund).where(Refund.reason != LATE_PAYMENT_REASON)
    if order_ids is not None:
        query = query.where(col(Refund.order_id).in_(order_ids))
    totals: dict[str, tuple[int, int]] = {}
    for refund in session.exec(query):
        done, pending = totals.get(refund.order_id, (0, 0))
        if refund.status == RefundStatus.SUCCEEDED:
            done += refund.amount
        elif refund.status == RefundStatus.PENDING and refund.requested_by != "system":
            pending += refund.amount  # a saga's own refunds move no ledger money
        totals[refund.order_id] = (done, pending)
    return totals


def _identity_problems(
    order_id: str, paid: int, refunds: tuple[int, int], parts: dict[str, int]
) -> list[str]:
    refunded, pending = refunds
    held = parts["merchant"] + parts["commission"] + parts["channel_fee"]
    problems = []
    if paid != refunded + parts["refunds_in_flight"] + held:
        problems.append(f"order {order_id}: paid {paid} != refunded {refunded} + {parts}")
    if parts["refunds_in_flight"] != pending:
        problems.append(f"order {order_id}: {pending} pending refunds, ledger says {parts}")
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


@dataclass(frozen=True)
class Scope:
    """The part of the books to prove: these orders, accounts and merchants' statements.

    None means all of them. The trial balance is always the whole ledger's.
    """

    order_ids: Collection[str] | None = None
    accounts: Collection[str] | None = None
    merchant_ids: Collection[str] | None = None


EVERYTHING = Scope()


def ledger_problems(session: Session, scope: Scope = EVERYTHING) -> list[str]:
    """Every broken invariant (within `scope`), described; an empty list is a clean bill."""
    problems = [f"trial balance {c}: {t}" for c, t in trial_balance(session).items() if t]
    problems += account_drift(session, scope.accounts)
    paid_query = (
        select(Order, Payment)
        .join(Payment, col(Payment.order_id) == Order.id)
        .where(Payment.status == "paid", col(Order.status).not_in(_COMPENSATING))
    )
    statements_query = select(Statement)
    if scope.order_ids is not None:
        paid_query = paid_query.where(col(Order.id).in_(scope.order_ids))
    if scope.merchant_ids is not None:
        statements_query = statements_query.where(
            col(Statement.merchant_id).in_(scope.merchant_ids)
        )
    paid = session.exec(paid_query).all()
    breakdowns = _breakdowns(session, scope.order_ids)
    refunds = _refund_totals(session, scope.order_ids)
    # Orders paid in another currency than their price: their identity in each currency
    # (db.fx_books), not the one-currency sum below.
    quoted = quoted_order_ids(session, paid)
    for order, payment in paid:
        if order.id in quoted:
            problems += fx_order_problems(session, order, payment.amount)
            continue
        parts = breakdowns.get(order.id, _breakdown({}))
        problems += _identity_problems(
            order.id, payment.amount, refunds.get(order.id, (0, 0)), parts
        )
    for statement in session.exec(statements_query):
        problems += statement_problems(statement)
    return problems
