"""The check run after every test: it proves what the test moved, and misses nothing of it.

Each case breaks the books on a database of its own (a broken ledger in the session's
database would fail every later check), once after the mark and once before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from db.tables import Account, Payment, Posting
from domain.ledger import AccountKind
from tests.databases import migrated_engine
from tests.db.conftest import open_shop
from tests.support import assert_ledger_sound, ledger_mark


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated_engine(f"sqlite:///{tmp_path / 'broken.db'}")
    yield engine
    engine.dispose()


def _overstate_payment(engine: Engine, order_id: str) -> None:
    with Session(engine) as session, session.begin():
        session.exec(update(Payment).where(Payment.order_id == order_id).values(amount=10001))  # type: ignore[arg-type]


def test_a_broken_order_of_the_test_is_found_by_the_check_after_it(engine: Engine) -> None:
    shop = open_shop(engine)
    shop.paid_order()
    mark = ledger_mark(engine)
    order_id = shop.paid_order()
    assert_ledger_sound(engine, since=mark)
    _overstate_payment(engine, order_id)
    with pytest.raises(AssertionError, match=order_id):
        assert_ledger_sound(engine, since=mark)


def test_an_unbalanced_entry_or_drifted_account_of_the_test_is_found(engine: Engine) -> None:
    shop = open_shop(engine)
    mark = ledger_mark(engine)
    shop.paid_order()
    merchant = shop.account(AccountKind.MERCHANT_PENDING)
    with Session(engine) as session, session.begin():
        # Drifted, not overdrawn: the database refuses a held balance below zero.
        drifted = Account.balance - 1
        session.exec(update(Account).where(Account.id == merchant).values(balance=drifted))  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match=merchant):
        assert_ledger_sound(engine, since=mark)
    with Session(engine) as session, session.begin():
        session.exec(update(Posting).where(Posting.account == merchant).values(amount=5))  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="unbalanced"):
        assert_ledger_sound(engine, since=mark)


def test_what_broke_before_the_mark_is_left_to_the_whole_check(engine: Engine) -> None:
    shop = open_shop(engine)
    order_id = shop.paid_order()
    _overstate_payment(engine, order_id)
    mark = ledger_mark(engine)
    shop.paid_order()
    assert_ledger_sound(engine, since=mark)  # this test's own order is sound
    with pytest.raises(AssertionError, match=order_id):
        assert_ledger_sound(engine)
