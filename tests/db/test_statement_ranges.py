"""A statement covers a range of its merchant's postings (revision 0016): each entry on
the available balance is covered by exactly one statement, whatever order the stamps
and the numbering give; a database whose statements listed their entries (before 0016)
is upgraded with its books, its statements cover what they covered, the next one covers
the rest; and a downgrade lists every range's entries again (both backends)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from alembic import command
from sqlalchemy import Engine, text
from sqlmodel import Session

from db.engine import make_engine
from db.migrate import alembic_config, upgrade_to_head
from db.order_money import release_funds
from db.reconcile import ledger_problems
from db.settlement import covered_entry_ids, prepare_statement
from db.tables import Statement
from domain.keys import funds_release_entry_id, payout_entry_id, payout_id
from tests.db.books import fill_books
from tests.db.conftest import Shop
from tests.db.test_migrations import fresh_url  # noqa: F401  (the fixture)

BEFORE = "0015_paid_day_index"


def _state(shop: Shop, day: date, now: datetime) -> Statement:
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        made = prepare_statement(session, shop.merchant_id, shop.currency, day, now)
    assert made is not None
    return made


def _covered(engine: Engine, statement: Statement) -> set[str]:
    with Session(engine) as session:
        return set(session.execute(covered_entry_ids(statement)).scalars())


def _released(shop: Shop, stamped: datetime) -> str:
    """A paid order released, its release entry stamped `stamped`: its id."""
    order_id = shop.paid_order()
    with Session(shop.engine) as session, session.begin():
        release_funds(session, order_id)
    with shop.engine.begin() as db:
        db.execute(
            text("UPDATE journal_entries SET created_at = :at WHERE id = :id"),
            {"at": stamped.replace(tzinfo=None), "id": funds_release_entry_id(order_id)},
        )
    return order_id


def _own_payout(statement: Statement) -> str:
    return payout_entry_id(payout_id(statement.id), "started")


def test_a_posting_stamped_after_the_cutoff_ends_the_range_before_it(shop: Shop) -> None:
    """Two hosts' clocks apart: a release stamped after the cutoff is numbered before one
    stamped before it. The statement covers what precedes the first stamped after; the
    next covers the rest; none is covered twice or left out, and the books hold."""
    cutoff = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    first = _released(shop, cutoff - timedelta(hours=2))
    skewed = _released(shop, cutoff + timedelta(minutes=1))
    behind = _released(shop, cutoff - timedelta(hours=1))

    made = _state(shop, cutoff.date(), cutoff)
    later = cutoff + timedelta(hours=1)
    after = _state(shop, later.date() + timedelta(days=1), later)

    assert made.order_count == 1 and after.order_count == 2
    assert _covered(shop.engine, made) == {funds_release_entry_id(first), _own_payout(made)}
    assert _covered(shop.engine, after) == {
        funds_release_entry_id(skewed),
        funds_release_entry_id(behind),
        _own_payout(after),
    }
    assert after.payout_amount == 2 * made.payout_amount > 0
    assert shop.ledger_problems() == []


def test_nothing_new_states_nothing_and_a_later_statement_begins_after_the_last(
    shop: Shop,
) -> None:
    now = datetime.now(UTC)
    first = _released(shop, now - timedelta(minutes=5))
    made = _state(shop, now.date(), now)
    with Session(shop.engine) as session, session.begin():
        again = prepare_statement(
            session, shop.merchant_id, shop.currency, now.date() + timedelta(days=1), now
        )
    assert again is None  # the payout took all: no entry new, nothing to carry

    second = _released(shop, now)
    later = _state(shop, now.date() + timedelta(days=2), now + timedelta(seconds=1))
    assert _covered(shop.engine, made) == {funds_release_entry_id(first), _own_payout(made)}
    assert _covered(shop.engine, later) == {funds_release_entry_id(second), _own_payout(later)}


def test_statements_that_listed_their_entries_upgrade_and_the_next_covers_the_rest(
    fresh_url: str,  # noqa: F811
) -> None:
    command.upgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    try:
        books = fill_books(engine)  # a statement as the code before 0016 wrote it
        shop = books.shop
        with engine.connect() as db:
            listed = set(
                db.execute(
                    text("SELECT entry_id FROM statement_entries WHERE statement_id = :id"),
                    {"id": books.statement_id},
                ).scalars()
            )
        assert funds_release_entry_id(books.order_id) in listed
        newer = _released(shop, datetime.now(UTC))  # after the statement: no row lists it

        upgrade_to_head(fresh_url)

        with Session(engine) as session:
            old = session.get_one(Statement, books.statement_id)
            assert set(session.execute(covered_entry_ids(old)).scalars()) == listed
        later = datetime.now(UTC).date() + timedelta(days=3)
        made = _state(shop, later, datetime.now(UTC))
        assert made.order_count == 1
        assert _covered(engine, made) == {funds_release_entry_id(newer), _own_payout(made)}
        with Session(engine) as session:
            assert ledger_problems(session) == []

        command.downgrade(alembic_config(fresh_url), BEFORE)

        with engine.connect() as db:
            rows = db.execute(text("SELECT statement_id, entry_id FROM statement_entries")).all()
        assert {entry for statement, entry in rows if statement == books.statement_id} == listed
        assert {entry for statement, entry in rows if statement == made.id} == {
            funds_release_entry_id(newer),
            _own_payout(made),
        }
    finally:
        engine.dispose()
