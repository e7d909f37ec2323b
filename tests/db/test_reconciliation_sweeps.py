"""A bill's sweep lines (the channel's transfers into our bank) against the sweeps we
posted for the same channel-day, per currency, on a real database (both backends): the
same sums match; a different sum, a transfer only the bill lists and one only we posted
are each an exception with both sides' figures.

The shop's channel is its own (its day is UTC's); its two paid orders are swept on two
days, each by one transfer, as `SweepRecords.post_sweep` posts them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlmodel import Session, select

from db.reconciliation import record_exceptions, start_run
from db.reconciliation_match import MatchInput, match_bill, write_bill_csv
from db.sweeps import post_channel_sweep
from db.tables import ChannelSweep, Order, Payment, ReconciliationException
from domain.bills import BillLine, BillLineKind
from domain.keys import channel_sweep_entry_id
from domain.reconciliation import Discrepancy
from tests.db.conftest import Shop

FIRST, SECOND = date(2025, 4, 7), date(2025, 4, 8)


def _sweep(shop: Shop, order_id: str, transfer_id: str, day: date) -> int:
    """The channel pays over the order's payment less its fee; the net it paid."""
    with Session(shop.engine) as session, session.begin():
        order = session.get(Order, order_id)
        assert order is not None and order.channel_fee_amount is not None
        gross = session.exec(select(Payment.amount).where(Payment.order_id == order_id)).one()
        net = gross - order.channel_fee_amount
        for _ in range(2):  # a repeated sweep posts and lists it once
            post_channel_sweep(
                session, transfer_id, shop.channel, "CNY", day=day, gross=gross, net=net, refunds=0
            )
    return net


def _line(shop: Shop, transfer_id: str, currency: str, amount: int, day: date) -> BillLine:
    return BillLine(
        channel=shop.channel,
        kind=BillLineKind.SWEEP,
        reference=transfer_id,
        channel_id=f"po_{transfer_id}",
        order_reference="",
        currency=currency,
        amount=amount,
        fee=0,
        at=datetime.combine(day, time(9), UTC),
    )


def _match(shop: Shop, work: Path, day: date, lines: list[BillLine]) -> list[Discrepancy]:
    work.mkdir(parents=True)
    write_bill_csv(lines, work / "bill.csv")
    match = MatchInput(shop.channel, day, work / "bill.csv", None, timedelta(seconds=30), work)
    with Session(shop.engine) as session:
        return match_bill(session, match).discrepancies


def test_the_bills_sweeps_are_matched_with_ours_of_the_day(shop: Shop, tmp_path: Path) -> None:
    first, second = shop.paid_order(), shop.paid_order()
    first_net = _sweep(shop, first, f"tr_{shop.channel}_1", FIRST)
    second_net = _sweep(shop, second, f"tr_{shop.channel}_2", SECOND)
    with Session(shop.engine) as session:
        listed = session.exec(
            select(ChannelSweep).where(ChannelSweep.channel == shop.channel)
        ).all()
    assert sorted((s.day, s.net, s.entry_id) for s in listed) == [
        (FIRST.isoformat(), first_net, channel_sweep_entry_id(f"tr_{shop.channel}_1")),
        (SECOND.isoformat(), second_net, channel_sweep_entry_id(f"tr_{shop.channel}_2")),
    ]

    agreed = [_line(shop, f"tr_{shop.channel}_1", "CNY", first_net, FIRST)]
    assert _match(shop, tmp_path / "agreed", FIRST, agreed) == []

    differing = [
        _line(shop, f"tr_{shop.channel}_1", "CNY", first_net - 40, FIRST),
        _line(shop, "tr_unknown", "USD", 500, FIRST),
    ]
    found = _match(shop, tmp_path / "differing", FIRST, differing)
    figures = {(d.type, d.reference, d.currency, d.ours_amount, d.theirs_amount) for d in found}
    assert figures == {
        ("amount_mismatch", "sweep:CNY", "CNY", first_net, first_net - 40),
        ("missing_here", "sweep:USD", "USD", None, 500),
    }
    assert all(d.line_kind == BillLineKind.SWEEP for d in found)
    assert "tr_unknown" in {d.reference: d for d in found}["sweep:USD"].detail

    # The second day's bill lists no transfer: ours is missing there.
    [missing] = _match(shop, tmp_path / "unlisted", SECOND, [])
    assert (missing.type, missing.reference, missing.ours_amount, missing.theirs_amount) == (
        "missing_there",
        "sweep:CNY",
        second_net,
        None,
    )

    # Each is an exception an operator works (no automatic action), stored as found.
    now = datetime.now(UTC)
    with Session(shop.engine) as session, session.begin():
        start_run(session, shop.channel, FIRST, now)
        recorded = record_exceptions(
            session, shop.channel, FIRST, found, frozenset(), now, complete=True
        )
    assert recorded.automatic == ()
    with Session(shop.engine) as session:
        stored = session.exec(
            select(ReconciliationException).where(ReconciliationException.channel == shop.channel)
        ).all()
        assert {(e.line_kind, e.type, e.status, e.auto_action) for e in stored} == {
            ("sweep", "amount_mismatch", "open", None),
            ("sweep", "missing_here", "open", None),
        }
