"""The matcher reads the day's window of our rows in one stream and looks up only what the
bill names beyond it: on a real database (both backends), what lies beyond the window is
matched as surely as what lies in it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from db.reconciliation_match import _DAY_COMPARED, MatchInput, match_bill, write_bill_csv
from db.tables import Order, Payment, Refund
from domain.bills import BillLine, BillLineKind
from tests.db.conftest import Shop

DAY = date(2025, 3, 5)
NOON = datetime.combine(DAY, time(12), UTC)
YESTERDAY = NOON - timedelta(days=1)


def _payment_line(shop: Shop, order_id: str, reference: str, attempt: int = 1) -> BillLine:
    with Session(shop.engine) as session:
        payment = session.get(Payment, (order_id, attempt))
        order = session.get(Order, order_id)
        assert payment is not None and order is not None
        return BillLine(
            shop.channel,
            BillLineKind.PAYMENT,
            reference,
            payment.channel_txn_id or "",
            reference,
            payment.currency,
            payment.amount,
            order.channel_fee_amount or 0,
            NOON,
        )


def _refund(shop: Shop, order_id: str, refund_id: str, at: datetime) -> BillLine:
    """A succeeded refund of 100 recorded at `at`, and the bill's line of it."""
    with Session(shop.engine) as session, session.begin():
        session.add(
            Refund(
                id=refund_id,
                order_id=order_id,
                channel=shop.channel,
                amount=100,
                currency=shop.currency,
                reason="requested",
                status="succeeded",
                requested_by="merchant",
                merchant_net_amount=100,
                created_at=at,
                updated_at=at,
            )
        )
    return BillLine(
        shop.channel,
        BillLineKind.REFUND,
        refund_id,
        f"r_{refund_id}",
        order_id,
        shop.currency,
        100,
        0,
        NOON,
    )


def test_what_the_bill_names_beyond_the_day_is_matched_as_what_lies_in_it(
    shop: Shop, tmp_path: Path
) -> None:
    today, earlier, modified = (shop.paid_order(paid_at=NOON) for _ in range(3))
    yesterdays = shop.paid_order(paid_at=YESTERDAY)  # paid the day before, billed today
    # Modified once: the first attempt closed unpaid, the second (a legacy "-2" reference,
    # as the channel's payment id) paid today.
    _paid_again(shop, modified)
    old_refund = _refund(shop, earlier, f"{earlier}-r1", YESTERDAY)  # another day's, billed
    todays_refund = _refund(shop, today, f"{today}-r1", NOON)
    lines = [
        _payment_line(shop, today, today),
        _payment_line(shop, earlier, earlier),
        _payment_line(shop, yesterdays, yesterdays),
        _payment_line(shop, modified, f"{modified}-2", attempt=2),
        todays_refund,
        replace(old_refund, amount=90),  # differs: 90 vs 100
        replace(_payment_line(shop, today, "ord_never_had"), channel_id="t_never_had"),
    ]
    try:
        bill = tmp_path / "bill.csv"
        write_bill_csv(lines, bill)
        match = MatchInput(shop.channel, DAY, bill, None, timedelta(seconds=30), tmp_path)
        with Session(shop.engine) as session:
            matched = match_bill(session, match)

        found = {
            (d.type.value, d.reference, d.ours_amount, d.theirs_amount)
            for d in matched.discrepancies
        }
        assert found == {
            ("amount_mismatch", f"{earlier}-r1", 100, 90),
            ("missing_here", "ord_never_had", None, lines[-1].amount),
        }
        # Of the orders the differences name, those we have: the worker acts on no other.
        assert matched.known_orders == {earlier}
        assert matched.bill_lines == 7
    finally:  # the refunds have no ledger entries: the shop's books must stay whole
        with Session(shop.engine) as session, session.begin():
            for refund_id in (f"{earlier}-r1", f"{today}-r1"):
                session.delete(session.get(Refund, refund_id))


def _paid_again(shop: Shop, order_id: str) -> str:
    """The order's first attempt closed unpaid and a second paid today: its reference."""
    with Session(shop.engine) as session, session.begin():
        first = session.exec(select(Payment).where(Payment.order_id == order_id)).one()
        session.add(
            Payment(
                order_id=order_id,
                channel=shop.channel,
                attempt=2,
                channel_payment_id=f"{order_id}-2",
                status="paid",
                channel_txn_id=f"{first.channel_txn_id}_2",
                amount=first.amount,
                currency=first.currency,
                paid_at=NOON,
                updated_at=NOON,
            )
        )
        first.status, first.paid_at, first.channel_txn_id = "closed", None, None
        session.add(first)
    return f"{order_id}-2"


def test_each_later_attempt_of_the_day_that_the_bill_lacks_is_missing_there(
    shop: Shop, tmp_path: Path
) -> None:
    """The day's later attempts are read apart from first ones (they need their reference
    named): the first of them read is matched as surely as the last."""
    billed = shop.paid_order(paid_at=NOON)
    lacking = [_paid_again(shop, shop.paid_order(paid_at=NOON)) for _ in range(2)]
    bill = tmp_path / "bill.csv"
    write_bill_csv([_payment_line(shop, billed, billed)], bill)
    match = MatchInput(shop.channel, DAY, bill, None, timedelta(seconds=30), tmp_path)
    with Session(shop.engine) as session:
        matched = match_bill(session, match)

    found = {(d.type.value, d.reference) for d in matched.discrepancies}
    assert found == {("missing_there", reference) for reference in lacking}


def test_a_first_attempt_billed_paid_is_not_taken_for_its_orders_later_one(
    shop: Shop, tmp_path: Path
) -> None:
    """The day's read holds every attempt by its order id: the channel billing an order's
    first attempt paid, which we closed before a second was paid today, is that first
    attempt's status_mismatch, not the second attempt agreeing with the bill."""
    order_id = shop.paid_order(paid_at=NOON)
    again = _paid_again(shop, order_id)
    bill = tmp_path / "bill.csv"
    lines = [_payment_line(shop, order_id, order_id), _payment_line(shop, order_id, again, 2)]
    write_bill_csv(lines, bill)
    match = MatchInput(shop.channel, DAY, bill, None, timedelta(seconds=30), tmp_path)
    with Session(shop.engine) as session:
        matched = match_bill(session, match)

    found = {(d.type.value, d.reference, d.ours_status) for d in matched.discrepancies}
    assert found == {("status_mismatch", order_id, "closed")}


def test_a_payment_recorded_just_after_midnight_may_be_on_the_previous_days_bill(
    shop: Shop, tmp_path: Path
) -> None:
    """Within the grace after midnight, a payment the day's bill lacks is looked for in the
    previous day's bill; past the grace, or on neither bill, it is missing there."""
    midnight = datetime.combine(DAY, time(0), UTC)
    today = shop.paid_order(paid_at=NOON)
    billed_before = shop.paid_order(paid_at=midnight + timedelta(seconds=10))
    on_neither = shop.paid_order(paid_at=midnight + timedelta(seconds=20))
    past_grace = shop.paid_order(paid_at=midnight + timedelta(minutes=1))
    bill, previous = tmp_path / "bill.csv", tmp_path / "previous.csv"
    write_bill_csv([_payment_line(shop, today, today)], bill)
    write_bill_csv([_payment_line(shop, o, o) for o in (billed_before, past_grace)], previous)
    match = MatchInput(shop.channel, DAY, bill, previous, timedelta(seconds=30), tmp_path)
    with Session(shop.engine) as session:
        matched = match_bill(session, match)

    found = {(d.type.value, d.reference) for d in matched.discrepancies}
    assert found == {("missing_there", on_neither), ("missing_there", past_grace)}


def test_the_days_payments_are_a_range_of_their_index(shop: Shop) -> None:
    """Not every payment the channel ever had: the time of a day's read must not grow with
    the years kept (SQLite's plan; PostgreSQL's depends on its statistics)."""
    if shop.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL picks its plan from statistics")
    query = _DAY_COMPARED
    params = {"channel": shop.channel, "start": NOON, "until": NOON + timedelta(days=1)}
    with shop.engine.connect() as db:
        plan = db.execute(text(f"EXPLAIN QUERY PLAN {query}"), params).all()
    read_of_payments = next(row[-1] for row in plan if " p " in f" {row[-1]} ")
    assert "ix_payments_paid_day (channel=? AND paid_at>? AND paid_at<?)" in read_of_payments
