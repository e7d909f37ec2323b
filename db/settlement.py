"""Merchant settlement: a statement per (merchant, day, currency) and its payout.

A statement covers every entry on the merchant's available balance posted before
its cutoff (the end of the day, or now if the day has not ended) that no earlier
statement covered. It opens with the previous statement's closing balance and
pays out what it states as available, never more than the balance holds at that
moment. The chain holds whatever the order runs happen in: after each statement,
the available balance is its closing plus the entries no statement covers yet.
The statement, its coverage, the payout row and the available -> in transit entry
are written in one transaction keyed by the statement id, so running a day twice,
or again after a crash half-way, finds the statement and pays nothing more.

    opening + gross - channel fees - commission - refunds + returned - payout = closing

`opening` is what the previous statements left (negative: a clawback still to
recover); `refunds` is the merchant's part of refunds, whether taken before or
after the order completed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import CursorResult, func, insert, literal
from sqlalchemy import select as core_select
from sqlalchemy.orm import Mapped
from sqlalchemy.sql import Select
from sqlmodel import Session, col, select

from db.ledger import lock_accounts, post_entry
from db.tables import Account, JournalEntry, Order, Payout, Posting, Statement, StatementEntry
from domain.keys import payout_entry_id, payout_id, statement_id
from domain.ledger import (
    AccountKind,
    EntryKind,
    account_id,
    normal_balance,
    payout_paid_postings,
    payout_return_postings,
    payout_start_postings,
)
from domain.settlement import PayoutStatus, StatementTotals, statement_totals
from domain.split import Split, split_payment


def day_cutoff(day: date, now: datetime) -> datetime:
    """The end of `day` (UTC), or now if the day is not over yet."""
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
    return min(end, now)


def merchant_currencies(session: Session, merchant_id: str) -> list[str]:
    """The currencies the merchant has an available balance in, in order."""
    rows = session.exec(
        select(Account.currency)
        .where(
            Account.kind == AccountKind.MERCHANT_AVAILABLE.value,
            Account.owner == merchant_id,
        )
        .order_by(col(Account.currency))
    ).all()
    return list(rows)


def merchants_with_something_to_settle(
    session: Session, cutoff: datetime, after: str = ""
) -> list[str]:
    """Merchants (after `after`, in id order) with entries on available before `cutoff` that
    no statement covers yet, or a statement that closed with money it could not pay out then.

    One probe per remaining merchant's account (the first uncovered posting ends it), not
    a scan of the day: a run asks again for every page, after the page before it.
    """
    uncovered = (
        select(Account.owner)
        .where(
            Account.kind == AccountKind.MERCHANT_AVAILABLE.value,
            col(Account.owner) > after,
            _uncovered_postings(col(Account.id), cutoff).exists(),
        )
        .distinct()
    )
    carried = (
        select(Statement.merchant_id)
        .where(Statement.closing_balance > 0, col(Statement.merchant_id) > after)
        .distinct()
    )
    return sorted({*session.exec(uncovered).all(), *session.exec(carried).all()})


def prepare_statement(
    session: Session, merchant_id: str, currency: str, day: date, now: datetime
) -> Statement | None:
    """The statement for the day, made once; None when there is nothing to settle."""
    available = account_id(AccountKind.MERCHANT_AVAILABLE, merchant_id, currency)
    locked = lock_accounts(session, [available])[available]
    # Looked up under the account's lock: a run that waited on another finds its statement.
    existing = session.get(Statement, statement_id(merchant_id, day, currency))
    if existing is not None:
        return existing
    previous = _latest_statement(session, merchant_id, currency)
    opening = previous.closing_balance if previous is not None else 0
    current = normal_balance(AccountKind.MERCHANT_AVAILABLE, locked.balance)
    cutoff = day_cutoff(day, now)
    by_kind, count = _uncovered_by_kind(session, available, cutoff)
    if not count and (opening <= 0 or current <= 0):
        return None  # nothing new to state and nothing to pay
    totals = statement_totals(
        opening_balance=opening,
        current_balance=current,
        entries=by_kind,
        released_orders=_released_orders(session, available, cutoff),
    )
    sequence = previous.sequence + 1 if previous is not None else 1
    statement = _statement_row(merchant_id, currency, day, cutoff, sequence, totals)
    session.add(statement)
    session.flush()
    _cover_uncovered(session, statement.id, available, cutoff, count)
    if totals.payout_amount > 0:
        _start_payout(session, statement)
    return statement


def statement_payout(session: Session, statement: Statement) -> Payout | None:
    return session.exec(select(Payout).where(Payout.statement_id == statement.id)).first()


def mark_payout_paid(session: Session, payout_key: str, bank_reference: str | None) -> Payout:
    """The bank confirmed: the money leaves in transit (once)."""
    return _finish_payout(session, payout_key, paid=True, detail=bank_reference)


def mark_payout_returned(session: Session, payout_key: str, reason: str) -> Payout:
    """The bank refused: the money returns to the merchant's available balance (once)."""
    return _finish_payout(session, payout_key, paid=False, detail=reason)


def _finish_payout(session: Session, payout_key: str, *, paid: bool, detail: str | None) -> Payout:
    payout = _locked_payout(session, payout_key)
    if payout.status != PayoutStatus.PENDING:
        return payout  # a repeat, or a late answer: the first outcome stands
    step, kind, postings = (
        ("paid", EntryKind.PAYOUT_PAID, payout_paid_postings)
        if paid
        else ("returned", EntryKind.PAYOUT_RETURNED, payout_return_postings)
    )
    post_entry(
        session,
        entry_id=payout_entry_id(payout.id, step),
        kind=kind,
        currency=payout.currency,
        postings=postings(payout.merchant_id, payout.currency, payout.amount),
        merchant_id=payout.merchant_id,
    )
    payout.status = PayoutStatus.PAID if paid else PayoutStatus.FAILED
    if paid:
        payout.bank_reference = detail
    else:
        payout.failure_reason = detail
    payout.updated_at = datetime.now(UTC)
    return payout


def _start_payout(session: Session, statement: Statement) -> None:
    key = payout_id(statement.id)
    entry = payout_entry_id(key, "started")
    post_entry(
        session,
        entry_id=entry,
        kind=EntryKind.PAYOUT_STARTED,
        currency=statement.currency,
        postings=payout_start_postings(
            statement.merchant_id, statement.currency, statement.payout_amount
        ),
        merchant_id=statement.merchant_id,
    )
    # The payout is this statement's own movement: covered here, never by the next one.
    session.add(StatementEntry(entry_id=entry, statement_id=statement.id))
    now = datetime.now(UTC)
    session.add(
        Payout(
            id=key,
            statement_id=statement.id,
            merchant_id=statement.merchant_id,
            amount=statement.payout_amount,
            currency=statement.currency,
            status=PayoutStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
    )


def _uncovered_postings(account: Mapped[str] | str, cutoff: datetime) -> Select[Any]:
    """The ids of entries on `account` before `cutoff` that no statement covers."""
    covered = core_select(col(StatementEntry.entry_id)).where(
        col(StatementEntry.entry_id) == col(JournalEntry.id)
    )
    return (
        core_select(col(JournalEntry.id))
        .join(Posting, col(Posting.entry_id) == JournalEntry.id)
        .where(
            col(Posting.account) == account,
            col(JournalEntry.created_at) < cutoff,
            ~covered.exists(),
        )
    )


def _uncovered_by_kind(
    session: Session, account: str, cutoff: datetime
) -> tuple[list[tuple[str, int]], int]:
    """What the uncovered entries on `account` add to it, per entry kind (credit-normal:
    credits add), and how many entries there are."""
    uncovered = _uncovered_postings(account, cutoff)
    rows = session.execute(
        uncovered.with_only_columns(
            col(JournalEntry.kind), func.sum(Posting.amount), func.count()
        ).group_by(col(JournalEntry.kind))
    ).all()
    return [(kind, -int(amount)) for kind, amount, _ in rows], sum(n for _, _, n in rows)


def _released_orders(session: Session, account: str, cutoff: datetime) -> list[Split]:
    """The splits of the orders whose uncovered release is on `account`: each distinct
    (amount, rates) split once by domain.split, as many times as orders have it."""
    released = (
        _uncovered_postings(account, cutoff)
        .with_only_columns(col(JournalEntry.order_id))
        .where(col(JournalEntry.kind) == EntryKind.FUNDS_RELEASED.value)
    )
    split_of = (col(Order.payable_amount), col(Order.channel_fee_rate), col(Order.commission_rate))
    rows = session.execute(
        core_select(*split_of, func.count()).where(col(Order.id).in_(released)).group_by(*split_of)
    ).all()
    return [
        split
        for payable, fee_rate, commission_rate, orders in rows
        for split in [split_payment(payable, Decimal(fee_rate), Decimal(commission_rate))] * orders
    ]


def _cover_uncovered(
    session: Session, statement: str, account: str, cutoff: datetime, expected: int
) -> None:
    """The statement covers every uncovered entry on `account` before `cutoff`, in one
    INSERT ... SELECT. The account is locked, so they are the entries just summed; a count
    that differs would be a statement that does not state what it covers: refused."""
    entries = _uncovered_postings(account, cutoff).with_only_columns(
        col(JournalEntry.id), literal(statement)
    )
    result = session.execute(
        insert(StatementEntry).from_select(["entry_id", "statement_id"], entries),
        execution_options={"preserve_rowcount": True},
    )
    assert isinstance(result, CursorResult)
    covered = result.rowcount
    if covered != expected:
        raise RuntimeError(f"statement {statement} covers {covered} entries, not {expected}")


def _latest_statement(session: Session, merchant_id: str, currency: str) -> Statement | None:
    return session.exec(
        select(Statement)
        .where(Statement.merchant_id == merchant_id, Statement.currency == currency)
        .order_by(col(Statement.sequence).desc())
        .limit(1)
    ).first()


def _statement_row(
    merchant_id: str,
    currency: str,
    day: date,
    cutoff: datetime,
    sequence: int,
    totals: StatementTotals,
) -> Statement:
    return Statement(
        id=statement_id(merchant_id, day, currency),
        merchant_id=merchant_id,
        day=day.isoformat(),
        currency=currency,
        sequence=sequence,
        cutoff=cutoff,
        created_at=datetime.now(UTC),
        **totals.model_dump(),
    )


def _locked_payout(session: Session, payout_key: str) -> Payout:
    return session.exec(select(Payout).where(Payout.id == payout_key).with_for_update()).one()
