"""The paid attempt's copy of its order's channel fee (`payments.channel_fee_amount`, what
the reconciliation compares with the bill) is the database's to keep: whatever writes a
payment or an order, the copy is the order's fee on the paid attempt and nothing on any
other; and a database upgraded with its books in it gets the copies (both backends)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlmodel import Session

import stack
from db.engine import make_engine
from db.migrate import alembic_config, upgrade_to_head
from db.reconcile import Scope, ledger_problems
from tests.db.books import fill_books
from tests.db.conftest import Shop
from tests.db.test_migrations import fresh_url  # noqa: F401  (the fixture)

_COPIES = (
    "SELECT p.attempt, p.status, p.channel_fee_amount, o.channel_fee_amount"
    " FROM payments AS p JOIN orders AS o ON o.id = p.order_id WHERE p.order_id = :id"
    " ORDER BY p.attempt"
)


def _copies(engine: Engine, order_id: str) -> list[tuple[int, str, int | None, int | None]]:
    with engine.connect() as db:
        return [tuple(row) for row in db.execute(text(_COPIES), {"id": order_id})]


def _write(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as db:
        db.execute(text(statement), params)


def test_a_captured_payment_keeps_its_orders_fee(shop: Shop) -> None:
    order_id = shop.paid_order()
    [(attempt, status, copy, fee)] = _copies(shop.engine, order_id)
    assert (attempt, status) == (1, "paid")
    assert fee is not None and fee > 0
    assert copy == fee


def test_the_copy_follows_its_order_and_refuses_to_differ(shop: Shop) -> None:
    order_id = shop.paid_order()
    _write(
        shop.engine,
        "UPDATE orders SET channel_fee_amount = channel_fee_amount + 1,"
        " commission_amount = commission_amount - 1 WHERE id = :id",
        id=order_id,
    )
    [(_, _, copy, fee)] = _copies(shop.engine, order_id)
    assert copy == fee
    _write(
        shop.engine, "UPDATE payments SET channel_fee_amount = 0 WHERE order_id = :id", id=order_id
    )
    [(_, _, copy, fee)] = _copies(shop.engine, order_id)
    assert copy == fee and copy != 0
    _write(
        shop.engine,
        "UPDATE orders SET channel_fee_amount = channel_fee_amount - 1,"
        " commission_amount = commission_amount + 1 WHERE id = :id",
        id=order_id,
    )  # as it was: the shop's books must still reconcile


def test_an_attempt_not_paid_holds_no_fee(shop: Shop) -> None:
    order_id = shop.paid_order()
    _write(
        shop.engine,
        "INSERT INTO payments (order_id, channel, attempt, status, amount, currency,"
        " channel_fee_amount, updated_at) SELECT order_id, channel, 2, 'closed', amount,"
        " currency, 5, updated_at FROM payments WHERE order_id = :id",
        id=order_id,
    )
    copies = _copies(shop.engine, order_id)
    assert [(attempt, status, copy is None) for attempt, status, copy, _ in copies] == [
        (1, "paid", False),
        (2, "closed", True),
    ]
    _write(shop.engine, "DELETE FROM payments WHERE order_id = :id AND attempt = 2", id=order_id)


_FEE_UP = (
    "UPDATE orders SET channel_fee_amount = channel_fee_amount + 1,"
    " commission_amount = commission_amount - 1 WHERE id = :id"
)
_PAID = "UPDATE payments SET status = 'paid' WHERE order_id = :id"


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as probe:
        waiting = probe.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


@pytest.mark.parametrize("first", ["order", "payment"])
def test_a_fee_set_while_its_payment_turns_paid_is_copied(shop: Shop, first: str) -> None:
    """Two transactions at once (PostgreSQL's; SQLite has one writer): one sets the order's
    fee, the other makes its payment paid. Neither sees the other's row uncommitted, so
    without a lock each trigger would copy nothing new."""
    if shop.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes one transaction at a time")
    order_id = shop.paid_order()
    _write(shop.engine, "UPDATE payments SET status = 'pending' WHERE order_id = :id", id=order_id)
    held, other = (_FEE_UP, _PAID) if first == "order" else (_PAID, _FEE_UP)
    with ThreadPoolExecutor(max_workers=1) as pool, shop.engine.connect() as db:
        db.execute(text(held), {"id": order_id})  # not committed yet
        later = pool.submit(_write, shop.engine, other, id=order_id)
        stack.wait_until(lambda: later.done() or _waiting_on_a_lock(shop.engine), "the other")
        db.commit()
        later.result(timeout=30)
    [(_, status, copy, fee)] = _copies(shop.engine, order_id)
    _write(  # as it was: the shop's books must still reconcile
        shop.engine,
        "UPDATE orders SET channel_fee_amount = channel_fee_amount - 1,"
        " commission_amount = commission_amount + 1 WHERE id = :id",
        id=order_id,
    )
    assert status == "paid"
    assert copy == fee


def test_an_upgraded_database_copies_every_paid_payments_fee(fresh_url: str) -> None:  # noqa: F811
    command.upgrade(alembic_config(fresh_url), "0014_pending_payouts_index")
    engine = make_engine(fresh_url)
    books = fill_books(engine)
    engine.dispose()

    upgrade_to_head(fresh_url)

    engine = make_engine(fresh_url)
    try:
        with engine.connect() as db:
            rows = db.execute(
                text(
                    "SELECT p.status, p.channel_fee_amount, o.channel_fee_amount FROM payments"
                    " AS p JOIN orders AS o ON o.id = p.order_id"
                )
            ).all()
        assert {status for status, _, _ in rows} >= {"paid", "pending"}
        for status, copy, fee in rows:
            assert copy == (fee if status == "paid" else None)
        assert any(copy for _, copy, _ in rows)
        paid_later = books.shop.paid_order()  # and the triggers keep the next ones
        [(_, _, copy, fee)] = _copies(engine, paid_later)
        assert copy == fee and copy is not None
    finally:
        engine.dispose()

    command.downgrade(alembic_config(fresh_url), "0014_pending_payouts_index")
    engine = make_engine(fresh_url)
    try:
        assert books.shop.paid_order()  # the triggers went with the column
    finally:
        engine.dispose()


def test_the_ledger_check_names_a_copy_that_differs(shop: Shop) -> None:
    """Were the triggers gone (a SQLite rebuild of payments that forgot them), the ledger's
    check names the copy that went wrong: shown in a transaction that drops them and is
    rolled back."""
    order_id = shop.paid_order()
    [(_, _, _, fee)] = _copies(shop.engine, order_id)
    postgres = shop.engine.dialect.name == "postgresql"
    triggers = ["payments_own_fee ON payments"] if postgres else ["payments_fee_on_update"]
    with shop.engine.connect() as db, db.begin() as transaction:
        for trigger in triggers:
            db.execute(text(f"DROP TRIGGER {trigger}"))
        db.execute(
            text("UPDATE payments SET channel_fee_amount = 0 WHERE order_id = :id"),
            {"id": order_id},
        )
        with Session(bind=db) as session:
            problems = ledger_problems(session, Scope(order_ids=[order_id]))
        transaction.rollback()
    assert problems == [f"order {order_id}: payment attempt 1 keeps a channel fee of 0, not {fee}"]
    [(_, _, copy, _)] = _copies(shop.engine, order_id)
    assert copy == fee  # rolled back: triggers and copy as they were
