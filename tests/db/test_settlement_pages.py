"""Settlement's set-based statements on a seeded day: pages after their cursor, settled
merchants dropping out, and a repeated step that states and pays nothing twice."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.testing import ActivityEnvironment

from activities.settlement_records import WHOLE_PAGE_ATTEMPTS, SettlementRecords
from bench import settlement_seed
from db.engine import session_factory
from db.reconcile import ledger_problems
from db.settlement import covered_entry_ids
from db.tables import Payout, Statement
from domain.keys import payout_entry_id, payout_id, statement_id
from domain.ledger import AccountKind, account_id
from domain.settlement import MerchantDay, PayoutOutcome, SettlementRunInput
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


def _covered(session: Session, statement: Statement) -> int:
    return len(session.execute(covered_entry_ids(statement)).all())


def _counts(engine: Engine) -> tuple[int, int, int]:
    """Statements, the entries they cover, payouts."""
    with Session(engine) as session:
        statements = session.exec(select(Statement)).all()
        return (
            len(statements),
            sum(_covered(session, statement) for statement in statements),
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
        assert _covered(session, statement) == 11
        assert ledger_problems(session) == []


def test_a_prepared_page_is_the_same_when_asked_again_until_its_payouts_are_answered(
    seeded: Engine,
) -> None:
    """The run's page step, retried after its commit (or asked by a later run of the day),
    hands over the same payouts: a page is every merchant after the cursor with a
    statement to make or a payout of the day the bank has not answered."""
    records = SettlementRecords(session_factory(seeded))
    scope = SettlementRunInput(day=DAY, merchants_per_run=2)
    first = records.prepare_page(scope)
    assert [m.merchant_id for m in first.merchants] == ["mch_bench1", "mch_bench2"]
    assert (first.remaining, first.through) == (3, "mch_bench2")
    assert all(len(m.payouts) == len(m.statement_ids) == 1 for m in first.merchants)
    assert _counts(seeded)[::2] == (2, 2)

    again = records.prepare_page(scope)  # a retry: nothing prepared, the same payouts
    assert again == first and _counts(seeded)[::2] == (2, 2)
    rest = records.prepare_page(scope.model_copy(update={"after": first.through}))
    assert [m.merchant_id for m in rest.merchants] == ["mch_bench3"] and rest.remaining == 1

    paid = first.merchants[0].payouts[0]
    records.record_payout(PayoutOutcome(payout_id=paid.payout_id, paid=True, bank_reference="b"))
    answered = records.prepare_page(scope)
    assert [m.merchant_id for m in answered.merchants] == ["mch_bench2", "mch_bench3"]
    assert answered.merchants[0] == first.merchants[1] and answered.remaining == 2
    with Session(seeded) as session:
        assert ledger_problems(session) == []


def test_a_merchant_that_keeps_failing_is_left_out_of_its_page_not_the_page(
    seeded: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """After the whole page failed WHOLE_PAGE_ATTEMPTS times, each merchant is prepared on
    its own: the broken one (a row in the way of its payout's entry, as a bug could leave)
    is logged and left with its money; the others go on."""
    records = SettlementRecords(session_factory(seeded))
    scope = SettlementRunInput(day=DAY, merchants_per_run=3)
    in_the_way = payout_entry_id(payout_id(statement_id("mch_bench2", DAY, "CNY")), "started")
    with seeded.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO journal_entries (id, merchant_id, kind, currency, created_at)"
                " VALUES (:id, 'mch_bench2', 'payout_started', 'CNY', :at)"
            ),
            {"id": in_the_way, "at": datetime.now(UTC)},
        )
        for kind, amount in (
            (AccountKind.MERCHANT_PENDING, 1),
            (AccountKind.MERCHANT_AVAILABLE, -1),
        ):
            connection.execute(
                text(
                    "INSERT INTO postings (entry_id, account, currency, amount)"
                    " VALUES (:id, :account, 'CNY', :amount)"
                ),
                {
                    "id": in_the_way,
                    "account": account_id(kind, "mch_bench2", "CNY"),
                    "amount": amount,
                },
            )
    with pytest.raises(IntegrityError):
        ActivityEnvironment().run(records.prepare_page, scope)  # the page as one
    assert _counts(seeded)[0] == 0  # nothing of it was kept

    late = ActivityEnvironment()
    late.info = dataclasses.replace(late.info, attempt=WHOLE_PAGE_ATTEMPTS + 1)
    page = late.run(records.prepare_page, scope)

    assert [m.merchant_id for m in page.merchants] == ["mch_bench1", "mch_bench3"]
    assert (page.through, page.remaining) == ("mch_bench3", 3)
    assert all(len(m.payouts) == 1 for m in page.merchants)
    left_out = [r for r in caplog.records if r.name == "activities.settlement_records"]
    assert [r.merchant_id for r in left_out] == ["mch_bench2"]  # type: ignore[attr-defined]
    with Session(seeded) as session:
        statements = session.exec(select(Statement.merchant_id)).all()
    assert sorted(statements) == ["mch_bench1", "mch_bench3"]


def test_a_day_run_again_for_its_unanswered_payouts_makes_no_statement(seeded: Engine) -> None:
    """The look back's run of a past day (unanswered_only) hands over the payouts of the day
    the bank has not answered, and nothing else: a merchant with entries to settle gets no
    statement dated that past day, and one whose payout was answered is not on the page."""
    records = SettlementRecords(session_factory(seeded))
    [pending] = records.prepare_statements(MerchantDay(merchant_id="mch_bench1", day=DAY))
    [answered] = records.prepare_statements(MerchantDay(merchant_id="mch_bench2", day=DAY))
    records.record_payout(PayoutOutcome(payout_id=answered.payout_id, paid=True))
    before = _counts(seeded)

    scope = SettlementRunInput(day=DAY, unanswered_only=True)
    page = records.prepare_page(scope)

    assert [(m.merchant_id, [p.payout_id for p in m.payouts]) for m in page.merchants] == [
        ("mch_bench1", [pending.payout_id])
    ]
    assert page.merchants[0].statement_ids == (pending.statement_id,)
    assert _counts(seeded) == before  # mch_bench3, with a day to settle, got no statement
    assert [m.merchant_id for m in records.prepare_page(SettlementRunInput(day=DAY)).merchants] == [
        "mch_bench1",
        "mch_bench3",
    ]
