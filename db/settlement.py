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

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, col, select

from db.ledger import lock_accounts, post_entry
from db.order_money import order_split
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
from domain.split import Split


def day_cutoff(day: date, now: datetime) -> datetime:
    """The end of `day` (UTC), or now if the day is not over yet."""
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
    return min(end, now)


def accounts_to_settle(session: Session) -> list[tuple[str, str]]:
    """(merchant, currency) of every merchant available balance the ledger has."""
    rows = session.exec(
        select(Account.owner, Account.currency)
        .where(Account.kind == AccountKind.MERCHANT_AVAILABLE.value)
        .order_by(col(Account.owner), col(Account.currency))
    ).all()
    return [(owner, currency) for owner, currency in rows]


def merchants_with_something_to_settle(session: Session, cutoff: datetime) -> list[str]:
    """Merchants with entries on available before `cutoff` that no statement covers yet, or
    a statement that closed with money it could not pay out then; in id order."""
    uncovered = session.exec(
        select(Account.owner)
        .join(Posting, col(Posting.account) == Account.id)
        .join(JournalEntry, col(JournalEntry.id) == Posting.entry_id)
        .where(
            Account.kind == AccountKind.MERCHANT_AVAILABLE.value,
            col(JournalEntry.created_at) < cutoff,
            ~col(JournalEntry.id).in_(select(StatementEntry.entry_id)),
        )
        .distinct()
    ).all()
    carried = session.exec(
        select(Statement.merchant_id).where(Statement.closing_balance > 0).distinct()
    ).all()
    return sorted(set(uncovered) | set(carried))


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
    entries = _uncovered_entries(session, available, cutoff)
    if not entries and (opening <= 0 or current <= 0):
        return None  # nothing new to state and nothing to pay
    totals = statement_totals(
        opening_balance=opening,
        current_balance=current,
        entries=[(entry.kind, amount) for entry, amount in entries],
        released_orders=_released_orders(session, [entry for entry, _ in entries]),
    )
    sequence = previous.sequence + 1 if previous is not None else 1
    statement = _statement_row(merchant_id, currency, day, cutoff, sequence, totals)
    session.add(statement)
    session.flush()
    session.add_all(StatementEntry(entry_id=e.id, statement_id=statement.id) for e, _ in entries)
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


def _uncovered_entries(
    session: Session, account: str, cutoff: datetime
) -> list[tuple[JournalEntry, int]]:
    """Entries on `account` before `cutoff` that no statement covers, with their amounts."""
    rows = session.exec(
        select(JournalEntry, Posting.amount)
        .join(Posting, col(Posting.entry_id) == JournalEntry.id)
        .where(
            Posting.account == account,
            col(JournalEntry.created_at) < cutoff,
            ~col(JournalEntry.id).in_(select(StatementEntry.entry_id)),
        )
        .order_by(col(JournalEntry.created_at), col(JournalEntry.id))
    ).all()
    return [(entry, -amount) for entry, amount in rows]  # credit-normal: credits add


def _latest_statement(session: Session, merchant_id: str, currency: str) -> Statement | None:
    return session.exec(
        select(Statement)
        .where(Statement.merchant_id == merchant_id, Statement.currency == currency)
        .order_by(col(Statement.sequence).desc())
        .limit(1)
    ).first()


def _released_orders(session: Session, entries: Sequence[JournalEntry]) -> list[Split]:
    ids = [e.order_id for e in entries if e.kind == EntryKind.FUNDS_RELEASED and e.order_id]
    if not ids:
        return []
    return [order_split(o) for o in session.exec(select(Order).where(col(Order.id).in_(ids)))]


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
