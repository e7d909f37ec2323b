"""Revision 0008 on a database with money in it: every row is kept, the reconciliation
tables arrive empty and take a run and its exceptions; a downgrade keeps the rest."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime

from alembic import command
from sqlalchemy import text
from sqlmodel import Session, select

from db.engine import make_engine
from db.ledger import post_entry
from db.migrate import alembic_config, current_revision, upgrade_to_head
from db.reconciliation import Adjustment, record_exceptions, resolve_exception, start_run
from db.tables import JournalEntry, ReconciliationException, ReconciliationRun
from domain.ledger import AccountKind, EntryKind, PostingLine
from domain.reconciliation import Discrepancy, DiscrepancyType
from tests.db.conftest import new_buyer
from tests.db.test_migrations import HEAD, fresh_url  # noqa: F401  (the fixture)

BEFORE = "0007_ledger_kinds"


def test_reconciliation_tables_arrive_empty_beside_the_kept_books(fresh_url: str) -> None:  # noqa: F811
    command.upgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    operator = new_buyer(engine)  # a user row: who resolves
    with Session(engine) as session, session.begin():
        post_entry(
            session,
            entry_id="kept-entry",
            kind=EntryKind.CHANNEL_SWEEP,
            currency="CNY",
            postings=[
                PostingLine("bank:platform:CNY", 500),
                PostingLine("channel_clearing:alipay:CNY", -500),
            ],
        )
    engine.dispose()

    upgrade_to_head(fresh_url)

    assert current_revision(fresh_url) == HEAD
    engine = make_engine(fresh_url)
    day, now = date(2026, 11, 29), datetime.now(UTC)
    try:
        with Session(engine) as session, session.begin():
            assert session.get(JournalEntry, "kept-entry") is not None
            for table in ("reconciliation_runs", "reconciliation_exceptions"):
                count = session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                assert count == 0, table
            start_run(session, "alipay", day, now)
            found = [
                Discrepancy(
                    type=DiscrepancyType.MISSING_THERE,
                    reference=f"ord_{secrets.token_hex(4)}",
                    currency="CNY",
                    ours_amount=500,
                )
            ]
            record_exceptions(session, "alipay", day, found, frozenset(), now)
            record_exceptions(session, "alipay", day, found, frozenset(), now)  # once only
            start_run(session, "alipay", day, now)  # a channel-day is one run
        with Session(engine) as session, session.begin():
            [exception] = session.exec(select(ReconciliationException.id)).all()
            adjustment = Adjustment(AccountKind.CHANNEL_CLEARING, None, 500)
            row = resolve_exception(session, exception, operator, "written off", adjustment, now)
            assert row is not None and row.adjustment_entry_id is not None
        with Session(engine) as session:
            assert session.get(ReconciliationRun, "alipay:2026-11-29") is not None
            assert session.get(ReconciliationException, exception) is not None
    finally:
        engine.dispose()

    command.downgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            entries = connection.execute(text("SELECT id FROM journal_entries")).scalars().all()
            tables = connection.dialect.get_table_names(connection)
    finally:
        engine.dispose()
    assert "kept-entry" in entries
    assert "reconciliation_runs" not in tables
