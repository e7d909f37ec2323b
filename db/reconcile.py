"""Proof that every minor unit is accounted for, read straight from the database.

    trial balance      the postings of every currency sum to zero
    account balances   each account's stored balance equals the sum of its postings
    every order        (at every moment: paid, refunding, compensating, closed, ...)
      clearing       = paid + paid late - refunded - refunded late
      clearing       = merchant + commission + channel fee + refunds in flight
                       + late payments
      late payments  = paid late - refunded late
      in flight      = pending requested refunds
                       + (paid - compensation refunded, once a compensation was asked)
    every statement    opening + gross - fees - commission - refunds + returned
                              - payout = closing

The order identity compares two independent records: the payment and refund rows
the sagas write, and the ledger entries posted for the order (summed by account kind:
"clearing" is what the channel holds for the order). "paid" is the order's own payment;
"paid late" is every late payment given back or being given back (a refund row with
reason `late_payment`, whatever its status: a refused one is still owed); "refunded"
and "refunded late" are the refunds the channel confirmed. A compensation books the
whole payment into refunds in flight when its refund is first asked, and a refused
attempt leaves it there for the next. Every row and its entry are written in one
transaction, so there is no moment at which they disagree.

`negative_balances` is the check for the end of a consistent run (orders paid,
refunded, paid out, every channel swept): no account that holds real money is below
zero. Mid-run the bank legitimately is: payouts leave before the channels pay in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Table, case, func, inspect
from sqlmodel import Session, SQLModel, col, select

from db.fx_books import fx_order_problems, quoted_order_ids
from db.tables import Account, JournalEntry, Order, Payment, Posting, Refund, Statement
from domain.ledger import AccountKind, account_parts, normal_balance
from domain.refunds import RefundStatus

LATE_PAYMENT_REASON = "late_payment"
COMPENSATION_REASON = "compensation"
# Accounts that hold real money, ours or held for someone: never below zero once the
# day's sweeps are in (merchant_available below zero is a clawback still to recover).
REAL_MONEY = (
    AccountKind.BANK,
    AccountKind.CHANNEL_CLEARING,
    AccountKind.MERCHANT_PENDING,
    AccountKind.MERCHANT_AVAILABLE,
    AccountKind.MERCHANT_IN_TRANSIT,
    AccountKind.REFUNDS_IN_FLIGHT,
    AccountKind.LATE_PAYMENTS,
)


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
        "late_payments": kind(AccountKind.LATE_PAYMENTS),
        "clearing": -kind(AccountKind.CHANNEL_CLEARING),
    }


@dataclass
class OrderRows:
    """What an order's payment and refund rows say, in minor units."""

    paid: int = 0
    refunded: int = 0  # confirmed refunds of its own payment (compensation included)
    pending: int = 0  # requested refunds asked, not yet confirmed or refused
    compensation_asked: bool = False
    compensation_refunded: int = 0
    paid_late: int = 0
    refunded_late: int = 0

    def add(self, refund: Refund) -> None:
        succeeded = refund.status == RefundStatus.SUCCEEDED
        if refund.reason == LATE_PAYMENT_REASON:
            self.paid_late += refund.amount
            self.refunded_late += refund.amount if succeeded else 0
            return
        self.refunded += refund.amount if succeeded else 0
        if refund.reason == COMPENSATION_REASON:
            self.compensation_asked = True
            self.compensation_refunded += refund.amount if succeeded else 0
        elif refund.status == RefundStatus.PENDING:
            self.pending += refund.amount

    @property
    def in_flight(self) -> int:
        owed_back = self.paid - self.compensation_refunded if self.compensation_asked else 0
        return self.pending + owed_back


def _order_rows(session: Session, order_ids: Collection[str] | None) -> dict[str, OrderRows]:
    """Per order (all, or `order_ids`) with a paid payment or a refund: two queries."""
    rows: dict[str, OrderRows] = defaultdict(OrderRows)
    payments = select(Payment).where(Payment.status == "paid")
    refunds = select(Refund)
    if order_ids is not None:
        payments = payments.where(col(Payment.order_id).in_(order_ids))
        refunds = refunds.where(col(Refund.order_id).in_(order_ids))
    for payment in session.exec(payments):
        rows[payment.order_id].paid += payment.amount
    for refund in session.exec(refunds):
        rows[refund.order_id].add(refund)
    return rows


_PAYMENTS: Table = SQLModel.metadata.tables["payments"]


def _fee_copies_that_differ(session: Session, order_ids: Collection[str] | None) -> list[str]:
    """Payments whose copy of the booked fee (kept by the database's triggers: on the paid
    attempt, its order's fee; on any other, none) is not what it should be. A database
    downgraded below revision 0015 keeps none, and has nothing to check."""
    columns = inspect(session.connection()).get_columns("payments")
    if not any(column["name"] == "channel_fee_amount" for column in columns):
        return []
    payments = _PAYMENTS.c
    should_be = case((payments.status == "paid", Order.channel_fee_amount), else_=None)
    query = (
        select(payments.order_id, payments.attempt, payments.channel_fee_amount, should_be)
        .join(Order, col(Order.id) == payments.order_id)
        .where(payments.channel_fee_amount.is_distinct_from(should_be))
    )
    if order_ids is not None:
        query = query.where(payments.order_id.in_(order_ids))
    return [
        f"order {order_id}: payment attempt {attempt} keeps a channel fee of {kept}, not {due}"
        for order_id, attempt, kept, due in session.exec(query)
    ]


def _paid_in_another_currency(
    session: Session, order_ids: Collection[str] | None
) -> list[tuple[Order, Payment]]:
    """Paid payments (of `order_ids`, or all) in another currency than their order's price."""
    query = (
        select(Order, Payment)
        .join(Payment, col(Payment.order_id) == Order.id)
        .where(Payment.status == "paid", col(Payment.currency) != Order.currency)
    )
    if order_ids is not None:
        query = query.where(col(Order.id).in_(order_ids))
    return list(session.exec(query).all())


def _identity_problems(order_id: str, rows: OrderRows, parts: dict[str, int]) -> list[str]:
    held = parts["merchant"] + parts["commission"] + parts["channel_fee"]
    owed = held + parts["refunds_in_flight"] + parts["late_payments"]
    taken = rows.paid + rows.paid_late - rows.refunded - rows.refunded_late
    checks = [
        ("clearing", parts["clearing"], taken),
        ("where the clearing is owed", owed, parts["clearing"]),
        ("late payments", parts["late_payments"], rows.paid_late - rows.refunded_late),
        ("refunds in flight", parts["refunds_in_flight"], rows.in_flight),
    ]
    return [
        f"order {order_id}: {what} is {booked} in the ledger, the records say {expected}"
        f" ({rows}; {parts})"
        for what, booked, expected in checks
        if booked != expected
    ]


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
    statements_query = select(Statement)
    if scope.merchant_ids is not None:
        statements_query = statements_query.where(
            col(Statement.merchant_id).in_(scope.merchant_ids)
        )
    breakdowns = _breakdowns(session, scope.order_ids)
    rows = _order_rows(session, scope.order_ids)
    # Orders paid in another currency than their price: their identity in each currency
    # (db.fx_books), not the one-currency sums below.
    foreign = _paid_in_another_currency(session, scope.order_ids)
    quoted = quoted_order_ids(session, foreign)
    for order, payment in foreign:
        if order.id in quoted:
            problems += fx_order_problems(session, order, payment.amount)
    for order_id in sorted((breakdowns.keys() | rows.keys()) - quoted):
        parts = breakdowns.get(order_id, _breakdown({}))
        problems += _identity_problems(order_id, rows.get(order_id, OrderRows()), parts)
    problems += _fee_copies_that_differ(session, scope.order_ids)
    for statement in session.exec(statements_query):
        problems += statement_problems(statement)
    return problems


def negative_balances(session: Session, accounts: Collection[str] | None = None) -> list[str]:
    """Accounts holding real money (all, or `accounts`) whose balance is below zero."""
    query = select(Account).where(col(Account.kind).in_([k.value for k in REAL_MONEY]))
    if accounts is not None:
        query = query.where(col(Account.id).in_(accounts))
    return [
        f"{account.id}: {balance}"
        for account in session.exec(query)
        if (balance := normal_balance(account_parts(account.id)[0], account.balance)) < 0
    ]
