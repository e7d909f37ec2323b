"""Matching a channel-day again, on a real database (both backends): each open exception
the new match no longer finds is closed by itself (auto_resolved, saying why), what an
operator resolved stays theirs, and the channel-day is still one run.

The bills are written straight into the matcher's CSV (`write_bill_csv`), as the
activity does after downloading; the shop's channel is its own, so the day holds only
this test's payments.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from db.reconciliation import record_exceptions, resolve_exception, start_run
from db.reconciliation_match import MatchInput, match_bill, write_bill_csv
from db.tables import Order, Payment, ReconciliationException, ReconciliationRun
from domain.bills import BillLine, BillLineKind
from domain.reconciliation import Discrepancy, DiscrepancyType, run_id
from tests.db.conftest import Shop, new_buyer

DAY = date(2025, 3, 5)
NOON = datetime.combine(DAY, time(12), UTC)


def _line(shop: Shop, order_id: str, **changes: object) -> BillLine:
    """The bill's line of the order's payment, as the channel took it."""
    with Session(shop.engine) as session:
        payment = session.exec(select(Payment).where(Payment.order_id == order_id)).one()
        order = session.get(Order, order_id)
        assert order is not None
        fields: dict[str, object] = {
            "channel": shop.channel,
            "kind": BillLineKind.PAYMENT,
            "reference": order_id,
            "channel_id": payment.channel_txn_id or "",
            "order_reference": order_id,
            "currency": payment.currency,
            "amount": payment.amount,
            "fee": order.channel_fee_amount or 0,
            "at": NOON,
        }
    fields.update(changes)
    return BillLine(**fields)  # type: ignore[arg-type]


def _run(shop: Shop, work: Path, lines: list[BillLine]) -> None:
    """One run of the channel-day: start it, match the bill, record what it found."""
    work.mkdir(parents=True, exist_ok=True)
    bill = work / "bill.csv"
    write_bill_csv(lines, bill)
    now = datetime.now(UTC)
    with Session(shop.engine) as session, session.begin():
        start_run(session, shop.channel, DAY, now)
    match = MatchInput(shop.channel, DAY, bill, None, timedelta(seconds=30), work)
    with Session(shop.engine) as session:
        matched = match_bill(session, match)
    with Session(shop.engine) as session, session.begin():
        record_exceptions(
            session,
            shop.channel,
            DAY,
            matched.discrepancies,
            matched.known_orders,
            now,
            complete=True,
        )


def _exceptions(engine: Engine, channel: str) -> dict[str, ReconciliationException]:
    with Session(engine) as session:
        rows = session.exec(
            select(ReconciliationException).where(ReconciliationException.channel == channel)
        ).all()
        for row in rows:
            session.expunge(row)
        return {row.reference: row for row in rows}


def test_a_day_matched_again_closes_what_no_longer_differs(shop: Shop, tmp_path: Path) -> None:
    short, unbilled = shop.paid_order(paid_at=NOON), shop.paid_order(paid_at=NOON)
    ghost = _line(shop, short, reference="ord_ghost", order_reference="ord_ghost", channel_id="g")
    first = [_line(shop, short, amount=_line(shop, short).amount + 100), ghost]

    _run(shop, tmp_path / "1", first)

    found = _exceptions(shop.engine, shop.channel)
    assert {(ref, e.type, e.status) for ref, e in found.items()} == {
        (short, "amount_mismatch", "open"),
        (unbilled, "missing_there", "open"),
        ("ord_ghost", "missing_here", "open"),
    }
    operator = new_buyer(shop.engine)
    with Session(shop.engine) as session, session.begin():
        resolve_exception(
            session, found["ord_ghost"].id, operator, "a test payment", None, datetime.now(UTC)
        )

    # The channel's corrected bill: both payments as we have them, the ghost gone.
    _run(shop, tmp_path / "2", [_line(shop, short), _line(shop, unbilled)])

    again = _exceptions(shop.engine, shop.channel)
    assert {(ref, e.type, e.status) for ref, e in again.items()} == {
        (short, "amount_mismatch", "auto_resolved"),
        (unbilled, "missing_there", "auto_resolved"),
        ("ord_ghost", "missing_here", "resolved"),
    }
    for reference in (short, unbilled):
        closed = again[reference]
        assert closed.resolution_reason and "no longer differs" in closed.resolution_reason
        assert closed.resolved_by is None and closed.resolved_at is not None
    kept = again["ord_ghost"]
    assert (kept.resolution_reason, kept.resolved_by) == ("a test payment", operator)
    # The figures stay as they were found: what differed, and by how much.
    assert again[short].theirs_amount == again[short].ours_amount + 100  # type: ignore[operator]

    _run(shop, tmp_path / "3", [_line(shop, short), _line(shop, unbilled)])
    assert _exceptions(shop.engine, shop.channel) == again  # nothing left to close
    with Session(shop.engine) as session:
        runs = session.exec(
            select(ReconciliationRun).where(ReconciliationRun.channel == shop.channel)
        ).all()
    assert [r.id for r in runs] == [run_id(shop.channel, DAY)]


def test_a_difference_found_again_stays_open_and_a_day_without_a_bill_closes_nothing(
    shop: Shop, tmp_path: Path
) -> None:
    short = shop.paid_order(paid_at=NOON)
    bill = [_line(shop, short, amount=1)]
    _run(shop, tmp_path / "1", bill)
    _run(shop, tmp_path / "2", bill)
    [still] = _exceptions(shop.engine, shop.channel).values()
    assert (still.type, still.status) == ("amount_mismatch", "open")

    # No bill this time (a bill-level problem is recorded, not a whole match): what was
    # found before cannot be said to be gone.
    with Session(shop.engine) as session, session.begin():
        problem = [Discrepancy(type=DiscrepancyType.BILL_NOT_READY, detail="not yet")]
        record_exceptions(session, shop.channel, DAY, problem, frozenset(), datetime.now(UTC))
    statuses = {e.type: e.status for e in _exceptions(shop.engine, shop.channel).values()}
    assert statuses == {"amount_mismatch": "open", "bill_not_ready": "open"}

    # The bill came after all: the bill_not_ready is gone, the difference is not.
    _run(shop, tmp_path / "3", bill)
    statuses = {e.type: e.status for e in _exceptions(shop.engine, shop.channel).values()}
    assert statuses == {"amount_mismatch": "open", "bill_not_ready": "auto_resolved"}


def test_a_difference_closed_as_gone_that_comes_back_is_open_again(
    shop: Shop, tmp_path: Path
) -> None:
    short, settled = shop.paid_order(paid_at=NOON), shop.paid_order(paid_at=NOON)
    _run(shop, tmp_path / "1", [_line(shop, short, amount=1), _line(shop, settled, amount=1)])
    operator = new_buyer(shop.engine)
    with Session(shop.engine) as session, session.begin():
        exception = _exceptions(shop.engine, shop.channel)[settled].id
        resolve_exception(session, exception, operator, "claimed", None, datetime.now(UTC))
    _run(shop, tmp_path / "2", [_line(shop, short), _line(shop, settled)])
    gone = _exceptions(shop.engine, shop.channel)
    assert (gone[short].status, gone[settled].status) == ("auto_resolved", "resolved")

    # The channel's bill differs again, by another amount: the difference is there.
    _run(shop, tmp_path / "3", [_line(shop, short, amount=2), _line(shop, settled, amount=2)])

    back = _exceptions(shop.engine, shop.channel)
    assert back[short].id == gone[short].id
    assert (back[short].status, back[short].theirs_amount) == ("open", 2)
    assert (back[short].resolution_reason, back[short].resolved_at) == (None, None)
    assert (back[settled].status, back[settled].theirs_amount) == ("resolved", 1)  # theirs
