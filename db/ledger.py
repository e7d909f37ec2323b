"""Posting balanced, idempotent, immutable journal entries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlmodel import Session, select

from db.tables import JournalEntry, Posting
from db.writes import insert_ignore
from domain.keys import reversal_entry_id
from domain.ledger import PostingLine, is_balanced, reversal_postings


class UnbalancedEntry(ValueError):
    pass


def post_entry(
    session: Session,
    *,
    entry_id: str,
    order_id: str,
    kind: str,
    currency: str,
    postings: Sequence[PostingLine],
    reverses_entry_id: str | None = None,
) -> bool:
    """Post the entry once; a second call with the same id changes nothing. True when new."""
    if not postings or not is_balanced(postings):
        raise UnbalancedEntry(f"entry {entry_id} is empty or does not balance")
    created = insert_ignore(
        session,
        JournalEntry,
        {
            "id": entry_id,
            "order_id": order_id,
            "kind": kind,
            "currency": currency,
            "reverses_entry_id": reverses_entry_id,
            "created_at": datetime.now(UTC),
        },
    )
    if created:
        session.add_all(
            Posting(entry_id=entry_id, account=p.account, currency=currency, amount=p.amount)
            for p in postings
        )
    return created


def entry_postings(session: Session, entry_id: str) -> list[PostingLine]:
    rows = session.exec(select(Posting).where(Posting.entry_id == entry_id).order_by(Posting.id))  # type: ignore[arg-type]
    return [PostingLine(row.account, row.amount) for row in rows]


def reverse_entry(session: Session, entry_id: str) -> bool:
    """Post the mirror image of an entry, once. False when there was nothing to reverse."""
    original = session.get(JournalEntry, entry_id)
    if original is None:
        return False
    return post_entry(
        session,
        entry_id=reversal_entry_id(entry_id),
        order_id=original.order_id,
        kind="reversal",
        currency=original.currency,
        postings=reversal_postings(entry_postings(session, entry_id)),
        reverses_entry_id=entry_id,
    )
