"""Posting journal entries: balanced, idempotent, immutable, and never overdrawing.

Every entry is written in the caller's transaction together with the balance
of each account it moves. The accounts are locked in id order first
(`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already
makes the transaction the only writer), so concurrent entries on one account
serialise, a balance check sees the latest balance, and two transactions never
wait on each other's locks in opposite orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, update
from sqlmodel import Session, SQLModel, col, select

from db.tables import Account, JournalEntry, Posting
from db.writes import insert_all_ignore, insert_ignore
from domain.keys import reversal_entry_id
from domain.ledger import (
    EntryKind,
    PostingLine,
    account_parts,
    is_balanced,
    may_go_negative,
    normal_balance,
    reversal_postings,
)

# Built once (see db.payments): the balances of the accounts an entry moves, locked in id
# order; its postings, one INSERT for them all; the new balances, one UPDATE an account.
# Rows and Core statements, not ORM objects: loading the accounts as objects and
# flushing their balances cost fulfil_payment about a sixth of its CPU.
_ACCOUNTS = SQLModel.metadata.tables["accounts"]
_LOCKED_BALANCES = (
    select(_ACCOUNTS.c.id, _ACCOUNTS.c.balance)
    .where(_ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_ACCOUNTS.c.id)
    .with_for_update()
)
_SET_BALANCE = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("account"))
    .values(balance=bindparam("new_balance"), updated_at=bindparam("at"))
)
_INSERT_POSTINGS = insert(SQLModel.metadata.tables["postings"])


class UnbalancedEntry(ValueError):
    pass


class InsufficientFunds(ValueError):
    """The entry would take an account below zero where that is not allowed."""

    def __init__(self, account: str, balance: int) -> None:
        super().__init__(f"{account} would go to {balance}")
        self.account = account
        self.balance = balance


def lock_accounts(session: Session, accounts: Iterable[str]) -> dict[str, int]:
    """Create missing accounts, then lock them all in id order; returns their balances by
    id."""
    ids = sorted(set(accounts))
    now = datetime.now(UTC)
    opened = []
    for account in ids:
        kind, owner, currency = account_parts(account)
        opened.append(
            {
                "id": account,
                "kind": kind.value,
                "owner": owner,
                "currency": currency,
                "balance": 0,
                "updated_at": now,
            }
        )
    insert_all_ignore(session, Account, opened)  # one execution, not one an account
    rows = session.execute(_LOCKED_BALANCES, {"ids": ids}).all()
    return {account: balance for account, balance in rows}


def post_entry(
    session: Session,
    *,
    entry_id: str,
    kind: EntryKind,
    currency: str,
    postings: Sequence[PostingLine],
    order_id: str | None = None,
    merchant_id: str | None = None,
    reverses_entry_id: str | None = None,
) -> bool:
    """Post the entry once; a second call with the same id changes nothing. True when new.

    Raises UnbalancedEntry for an empty or unbalanced entry and InsufficientFunds when
    an account would go below zero where `may_go_negative` forbids it; the caller's
    transaction then rolls back, so nothing of the entry is kept.
    """
    if not postings or not is_balanced(postings):
        raise UnbalancedEntry(f"entry {entry_id} is empty or does not balance")
    accounts = lock_accounts(session, (p.account for p in postings))
    created = insert_ignore(
        session,
        JournalEntry,
        {
            "id": entry_id,
            "order_id": order_id,
            "merchant_id": merchant_id,
            "kind": kind.value,
            "currency": currency,
            "reverses_entry_id": reverses_entry_id,
            "created_at": datetime.now(UTC),
        },
    )
    if not created:
        return False
    for posting in postings:
        accounts[posting.account] = _moved(
            posting.account, accounts[posting.account], posting.amount, kind
        )
    rows = [
        {"entry_id": entry_id, "account": p.account, "currency": currency, "amount": p.amount}
        for p in postings
    ]
    session.execute(_INSERT_POSTINGS, rows)
    at = datetime.now(UTC)
    moved = [{"account": a, "new_balance": b, "at": at} for a, b in accounts.items()]
    session.execute(_SET_BALANCE, moved)
    _forget_balances(session, accounts)
    return True


def _moved(account: str, balance: int, amount: int, entry: EntryKind) -> int:
    """The account's balance after `amount`; raises InsufficientFunds where that is refused."""
    account_kind = account_parts(account)[0]
    before = normal_balance(account_kind, balance)
    after = normal_balance(account_kind, balance + amount)
    # Only a movement that lowers the balance below zero is refused: an account that is
    # already negative (a clawback) may still be credited back towards zero.
    if after < 0 and after < before and not may_go_negative(account_kind, entry):
        raise InsufficientFunds(account, after)
    return balance + amount


def _forget_balances(session: Session, accounts: Iterable[str]) -> None:
    """An account the session holds as an object is read again when next used: its
    balance was just set by a statement the object did not see."""
    held = session.identity_map
    for account in accounts:
        loaded = held.get(session.identity_key(Account, account))
        if loaded is not None:
            session.expire(loaded)


def entry_postings(session: Session, entry_id: str) -> list[PostingLine]:
    rows = session.exec(
        select(Posting).where(Posting.entry_id == entry_id).order_by(col(Posting.id))
    )
    return [PostingLine(row.account, row.amount) for row in rows]


def reverse_entry(session: Session, entry_id: str) -> bool:
    """Post the mirror image of an entry, once. False when there was nothing to reverse."""
    original = session.get(JournalEntry, entry_id)
    if original is None:
        return False
    return post_entry(
        session,
        entry_id=reversal_entry_id(entry_id),
        kind=EntryKind.REVERSAL,
        currency=original.currency,
        postings=reversal_postings(entry_postings(session, entry_id)),
        order_id=original.order_id,
        merchant_id=original.merchant_id,
        reverses_entry_id=entry_id,
    )


def account_balance(session: Session, account: str) -> int:
    """The normal balance of an account (0 for one never posted to)."""
    row = session.get(Account, account)
    return 0 if row is None else normal_balance(account_parts(account)[0], row.balance)
