"""Journal entries on the real database: balanced, idempotent, reversible once."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from db.ledger import (
    UnbalancedEntry,
    account_balance,
    entry_postings,
    lock_accounts,
    post_entry,
    reverse_entry,
)
from db.tables import Account, JournalEntry
from domain.ledger import EntryKind, PostingLine, reversal_postings, settlement_postings
from domain.split import split_payment
from tests.conftest import System
from tests.support import assert_ledger_sound


def _post(session: Session, entry_id: str, postings: list[PostingLine]) -> bool:
    return post_entry(
        session,
        entry_id=entry_id,
        kind=EntryKind.SETTLEMENT,
        currency="CNY",
        postings=postings,
    )


def test_settlement_entry_posts_once_and_reverses_once(system: System) -> None:
    from decimal import Decimal

    entry_id = f"ord_{secrets.token_hex(6)}:settlement"
    split = split_payment(10_000, Decimal("0.006"), Decimal("0.05"))
    postings = settlement_postings("alipay", "mer_x", "CNY", split)
    with Session(system.engine) as session, session.begin():
        assert _post(session, entry_id, postings) is True
    with Session(system.engine) as session, session.begin():
        assert _post(session, entry_id, postings) is False  # a retry changes nothing
    with Session(system.engine) as session, session.begin():
        assert reverse_entry(session, entry_id) is True
    with Session(system.engine) as session, session.begin():
        assert reverse_entry(session, entry_id) is False
        assert reverse_entry(session, "no-such-entry") is False
    with Session(system.engine) as session:
        assert entry_postings(session, entry_id + ":reversal") == reversal_postings(postings)
        ids = session.exec(
            select(JournalEntry.id).where(JournalEntry.id.startswith(entry_id))
        ).all()
        assert sorted(ids) == [entry_id, entry_id + ":reversal"]
    assert_ledger_sound(system.engine)


def test_unbalanced_entry_is_refused_and_nothing_is_written(system: System) -> None:
    entry_id = f"ord_{secrets.token_hex(6)}:bad"
    with Session(system.engine) as session, session.begin(), pytest.raises(UnbalancedEntry):
        _post(session, entry_id, [PostingLine("bank:a:CNY", 100), PostingLine("bank:b:CNY", -99)])
    with Session(system.engine) as session:
        assert session.get(JournalEntry, entry_id) is None


def test_empty_entry_is_refused(system: System) -> None:
    entry_id = f"ord_{secrets.token_hex(6)}:empty"
    with Session(system.engine) as session, session.begin(), pytest.raises(UnbalancedEntry):
        _post(session, entry_id, [])


def test_locking_no_accounts_opens_none(ledger_engine: Engine) -> None:
    """An empty executemany would be one INSERT of the table's defaults (a row with no id)."""
    with Session(ledger_engine) as session, session.begin():
        assert lock_accounts(session, []) == {}


def test_an_account_the_session_holds_shows_the_balance_an_entry_left(
    ledger_engine: Engine,
) -> None:
    """Balances are set by a statement, not through the ORM's objects: an account the
    session had loaded before the entry is read again, not served stale."""
    owner = secrets.token_hex(6)
    bank, pending = f"bank:{owner}:CNY", f"merchant_pending:{owner}:CNY"
    with Session(ledger_engine) as session, session.begin():
        lock_accounts(session, [bank, pending])
        held = session.get_one(Account, bank)
        assert held.balance == 0
        _post(session, f"e_{owner}", [PostingLine(bank, 700), PostingLine(pending, -700)])
        assert held.balance == 700
        assert account_balance(session, pending) == 700  # credit-normal: holds 700
