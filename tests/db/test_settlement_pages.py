"""Settlement's set-based statements on a seeded day: pages after their cursor, settled
merchants dropping out, and a repeated step that states and pays nothing twice."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from activities.settlement_records import SettlementRecords
from bench import settlement_seed
from db.engine import session_factory
from db.reconcile import ledger_problems
from db.tables import Payout, Statement, StatementEntry
from domain.settlement import MerchantDay, SettlementRunInput
from tests.databases import create_database, drop_database, migrated_engine

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
DAY = datetime.now(UTC).date() - timedelta(days=1)


@pytest.fixture(params=BACKENDS)
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """30 completed orders of 3 merchants (mch_bench1..3) on DAY, in a database of its own."""
    if request.param == "sqlite":
        engine = migrated_engine(f"sqlite:///{tmp_path / 'pages.db'}")
        settlement_seed.seed(engine, 30, 3, DAY)
        yield engine
        engine.dispose()
        return
    server, name = os.environ["TEST_DATABASE_URL"], f"pages_{secrets.token_hex(4)}"
    engine = migrated_engine(create_database(server, name))
    settlement_seed.seed(engine, 30, 3, DAY)
    yield engine
    engine.dispose()
    drop_database(server, name)


def _counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return (
            session.exec(select(func.count()).select_from(Statement)).one(),
            session.exec(select(func.count()).select_from(StatementEntry)).one(),
            session.exec(select(func.count()).select_from(Payout)).one(),
        )


def test_pages_follow_their_cursor_and_settled_merchants_drop_out(seeded: Engine) -> None:
    records = SettlementRecords(session_factory(seeded))
    scope = SettlementRunInput(day=DAY, merchants_per_run=2)
    first = records.merchants_page(scope)
    assert first.merchant_ids == ("mch_bench1", "mch_bench2") and first.remaining == 3
    after = records.merchants_page(scope.model_copy(update={"after": "mch_bench1"}))
    assert after.merchant_ids == ("mch_bench2", "mch_bench3") and after.remaining == 2

    payouts = records.prepare_statements(MerchantDay(merchant_id="mch_bench2", day=DAY))
    assert len(payouts) == 1
    # 10 orders: a settlement entry and a release each, the release on available; + the payout
    assert _counts(seeded) == (1, 11, 1)
    again = records.prepare_statements(MerchantDay(merchant_id="mch_bench2", day=DAY))
    assert again == payouts and _counts(seeded) == (1, 11, 1)  # nothing stated or paid twice

    assert records.merchants_page(scope).merchant_ids == ("mch_bench1", "mch_bench3")
    with Session(seeded) as session:
        statement = session.exec(select(Statement)).one()
        assert (statement.order_count, statement.closing_balance) == (10, 0)
        assert statement.payout_amount == payouts[0].amount > 0
        covered = session.exec(
            select(func.count()).where(col(StatementEntry.statement_id) == statement.id)
        ).one()
        assert covered == 11
        assert ledger_problems(session) == []
