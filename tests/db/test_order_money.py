"""An order's money on the real database: refunds, release, statements and payouts.

Every shop sells a 10000 order (two lines: 3 units for 5000, 2 units for 5000) at a
0.6% channel fee and 5% commission: 60 to the channel, 500 to us, 9440 to the merchant.
After each test the shop's ledger must reconcile, and the whole database once the module
is done (fixtures `shop` and `ledger_engine` in conftest).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, func, select

from db.ledger import InsufficientFunds, post_entry
from db.order_money import (
    complete_refund,
    fail_refund,
    release_funds,
    reserve_refund,
)
from db.settlement import (
    covered_entry_ids,
    mark_payout_paid,
    mark_payout_returned,
    prepare_statement,
    statement_payout,
)
from db.tables import JournalEntry, Order, Payout, Refund, RefundLine, Statement
from domain.keys import funds_release_entry_id, payout_entry_id, refund_reservation_entry_id
from domain.ledger import AccountKind, EntryKind, payout_start_postings
from domain.order_status import OrderStatus
from domain.refunds import LineRefund, RefundAsk, RefundRejected, RefundStatus, Requester
from domain.settlement import PayoutStatus
from domain.split import Split, split_payment
from tests.db.conftest import COMMISSION_RATE, FEE_RATE, Shop, new_id

WINDOW = timedelta(days=14)
# Statement days start tomorrow, so each cutoff is `now` and covers everything posted so far.
FIRST_DAY = datetime.now(UTC).date() + timedelta(days=1)
SPLIT = split_payment(10_000, FEE_RATE, COMMISSION_RATE)  # 60 / 500 / 9440

PENDING = AccountKind.MERCHANT_PENDING
AVAILABLE = AccountKind.MERCHANT_AVAILABLE
IN_TRANSIT = AccountKind.MERCHANT_IN_TRANSIT
IN_FLIGHT = AccountKind.REFUNDS_IN_FLIGHT
CHANNEL_FEE = AccountKind.CHANNEL_FEE


def refund(
    shop: Shop,
    order_id: str,
    *,
    amount: int | None = None,
    lines: Sequence[tuple[int, int]] = (),
    by: Requester = Requester.OPERATOR,
    refund_id: str | None = None,
) -> Refund:
    ask = RefundAsk(
        refund_id=refund_id or new_id("rf"),
        order_id=order_id,
        requested_by=by,
        amount=amount,
        lines=tuple(LineRefund(line_no=n, quantity=q) for n, q in lines),
    )
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        return reserve_refund(session, ask, WINDOW)


def rejection(shop: Shop, order_id: str, **ask: Any) -> str:
    """The code a refund is rejected with; the shop's data must be exactly as before."""
    before = shop.snapshot()
    with pytest.raises(RefundRejected) as rejected:
        refund(shop, order_id, **ask)
    assert shop.snapshot() == before
    return rejected.value.code


def complete(shop: Shop, refund_id: str) -> Refund:
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        return complete_refund(session, refund_id)


def fail(shop: Shop, refund_id: str, reason: str = "channel_refused") -> Refund:
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        return fail_refund(session, refund_id, reason)


def release(shop: Shop, order_id: str) -> int:
    with Session(shop.engine) as session, session.begin():
        return release_funds(session, order_id)


def day(n: int) -> date:
    return FIRST_DAY + timedelta(days=n)


def statement(shop: Shop, n: int) -> Statement | None:
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        return prepare_statement(
            session, shop.merchant_id, shop.currency, day(n), datetime.now(UTC)
        )


def payout_of(shop: Shop, made: Statement) -> Payout:
    with Session(shop.engine) as session:
        payout = statement_payout(session, made)
    assert payout is not None
    return payout


def order_row(shop: Shop, order_id: str) -> Order:
    with Session(shop.engine) as session:
        return session.exec(select(Order).where(Order.id == order_id)).one()


def parts(row: Refund | Order) -> Split:
    if isinstance(row, Order):
        return Split(
            payable_amount=row.refunded_amount,
            channel_fee_amount=row.refunded_fee_amount,
            commission_amount=row.refunded_commission_amount,
            merchant_net_amount=row.refunded_net_amount,
        )
    return Split(
        payable_amount=row.amount,
        channel_fee_amount=row.channel_fee_amount,
        commission_amount=row.commission_amount,
        merchant_net_amount=row.merchant_net_amount,
    )


def total(*splits: Split) -> Split:
    return Split(
        payable_amount=sum(s.payable_amount for s in splits),
        channel_fee_amount=sum(s.channel_fee_amount for s in splits),
        commission_amount=sum(s.commission_amount for s in splits),
        merchant_net_amount=sum(s.merchant_net_amount for s in splits),
    )


def count_entries(shop: Shop, kind: EntryKind) -> int:
    with Session(shop.engine) as session:
        return session.exec(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.merchant_id == shop.merchant_id, JournalEntry.kind == kind.value)
        ).one()


def payout_count(shop: Shop) -> int:
    with Session(shop.engine) as session:
        return len(session.exec(select(Payout).where(Payout.merchant_id == shop.merchant_id)).all())


def start_payout_directly(shop: Shop, amount: int) -> None:
    with Session(shop.engine) as session, session.begin():
        post_entry(
            session,
            entry_id=new_id("po") + ":started",
            kind=EntryKind.PAYOUT_STARTED,
            currency=shop.currency,
            postings=payout_start_postings(shop.merchant_id, shop.currency, amount),
            merchant_id=shop.merchant_id,
        )


def closes(made: Statement) -> bool:
    """opening + gross - fees - commission - refunded + returned - payout == closing."""
    return (
        made.opening_balance
        + made.gross_amount
        - made.channel_fee_amount
        - made.commission_amount
        - made.refunded_amount
        + made.returned_amount
        - made.payout_amount
    ) == made.closing_balance


def test_a_partial_refund_then_the_rest_gives_back_the_split_exactly(shop: Shop) -> None:
    order_id = shop.paid_order()

    first = refund(shop, order_id, amount=3_333)
    rest = refund(shop, order_id, amount=6_667)

    assert parts(first) == Split(
        payable_amount=3_333,
        channel_fee_amount=20,
        commission_amount=167,
        merchant_net_amount=3_146,
    )
    assert total(parts(first), parts(rest)) == SPLIT
    assert parts(order_row(shop, order_id)) == SPLIT
    assert shop.balances()[PENDING] == 0
    assert shop.balances()[CHANNEL_FEE] == 0
    assert shop.balances()[IN_FLIGHT] == 10_000
    assert shop.entry_totals()[AccountKind.PLATFORM_COMMISSION] == 0

    complete(shop, first.id)
    complete(shop, rest.id)

    assert shop.balances() == dict.fromkeys(shop.balances(), 0)
    assert rejection(shop, order_id, amount=1) == "amount_exceeds_refundable"


def test_a_refund_over_what_is_left_is_rejected_and_writes_nothing(shop: Shop) -> None:
    order_id = shop.paid_order()
    refund(shop, order_id, amount=4_000)

    assert rejection(shop, order_id, amount=6_001) == "amount_exceeds_refundable"
    assert rejection(shop, order_id, amount=0) == "amount_invalid"

    assert refund(shop, order_id, amount=6_000).amount == 6_000  # exactly what is left


def test_line_refunds_give_back_exactly_each_lines_payable_amount(shop: Shop) -> None:
    order_id = shop.paid_order()  # line 0: 3 units for 5000; line 1: 2 units for 5000

    one_by_one = [refund(shop, order_id, lines=[(0, 1)]) for _ in range(2)]
    assert [r.amount for r in one_by_one] == [1_667, 1_666]
    assert rejection(shop, order_id, lines=[(0, 2)]) == "quantity_exceeds_refundable"
    last = refund(shop, order_id, lines=[(0, 1), (1, 1)])
    assert last.amount == 1_667 + 2_500

    assert rejection(shop, order_id, lines=[(1, 2)]) == "quantity_exceeds_refundable"
    assert rejection(shop, order_id, lines=[(7, 1)]) == "line_invalid"
    assert rejection(shop, order_id, lines=[(1, 1), (1, 1)]) == "line_invalid"
    refund(shop, order_id, lines=[(1, 1)])

    assert parts(order_row(shop, order_id)) == SPLIT
    with Session(shop.engine) as session:
        rows = session.exec(select(RefundLine).where(RefundLine.refund_id == last.id)).all()
    assert sorted((r.line_no, r.quantity, r.amount) for r in rows) == [
        (0, 1, 1_667),
        (1, 1, 2_500),
    ]


def test_an_ask_gives_either_an_amount_or_lines(shop: Shop) -> None:
    order_id = shop.paid_order()
    assert rejection(shop, order_id) == "amount_or_lines"
    assert rejection(shop, order_id, amount=100, lines=[(0, 1)]) == "amount_or_lines"


def test_only_an_order_awaiting_receipt_or_completed_may_be_refunded(shop: Shop) -> None:
    order_id = shop.paid_order()
    with Session(shop.engine) as session, session.begin():
        session.exec(select(Order).where(Order.id == order_id)).one().status = OrderStatus.SETTLED
    assert rejection(shop, order_id, amount=100) == "order_not_refundable"


def test_a_repeated_refund_id_returns_the_same_refund_and_moves_nothing(shop: Shop) -> None:
    order_id = shop.paid_order()
    refund_id = new_id("rf")
    first = refund(shop, order_id, amount=2_500, refund_id=refund_id)
    before = shop.snapshot()

    again = refund(shop, order_id, amount=9_999, refund_id=refund_id)  # a retry, other numbers

    assert (again.id, parts(again), again.status) == (first.id, parts(first), first.status)
    assert shop.snapshot() == before

    complete(shop, refund_id)
    after_completion = shop.snapshot()
    assert complete(shop, refund_id).status == RefundStatus.SUCCEEDED
    assert fail(shop, refund_id).status == RefundStatus.SUCCEEDED  # too late to fail
    assert refund(shop, order_id, amount=1, refund_id=refund_id).amount == 2_500
    assert shop.snapshot() == after_completion


def test_a_refund_failing_before_release_returns_to_pending_and_may_be_asked_again(
    shop: Shop,
) -> None:
    order_id = shop.paid_order()
    asked = refund(shop, order_id, amount=10_000)
    assert shop.balances()[PENDING] == 0

    failed = fail(shop, asked.id, "card_closed")

    assert (failed.status, failed.failure_reason) == (RefundStatus.FAILED, "card_closed")
    assert shop.balances()[PENDING] == 9_440
    assert shop.balances()[CHANNEL_FEE] == 60
    assert shop.balances()[IN_FLIGHT] == 0
    assert shop.entry_totals()[AccountKind.PLATFORM_COMMISSION] == 500
    assert parts(order_row(shop, order_id)).payable_amount == 0
    before = shop.snapshot()
    assert fail(shop, asked.id).status == RefundStatus.FAILED
    assert complete(shop, asked.id).status == RefundStatus.FAILED  # too late to complete
    assert shop.snapshot() == before

    assert refund(shop, order_id, amount=10_000).amount == 10_000
    assert shop.balances()[PENDING] == 0


def test_a_refund_failing_after_release_returns_to_available(shop: Shop) -> None:
    order_id = shop.paid_order()
    asked = refund(shop, order_id, amount=4_000)  # 3776 of it is the merchant's

    assert release(shop, order_id) == 9_440 - 3_776
    fail(shop, asked.id)

    assert shop.balances()[PENDING] == 0
    assert shop.balances()[AVAILABLE] == 9_440
    again = refund(shop, order_id, amount=10_000)
    assert again.from_available
    assert shop.balances()[AVAILABLE] == 0


def test_release_after_a_partial_refund_releases_the_net_less_the_refunded_net(
    shop: Shop,
) -> None:
    order_id = shop.paid_order()
    asked = refund(shop, order_id, amount=2_000)
    assert asked.merchant_net_amount == 1_888

    assert release(shop, order_id) == 9_440 - 1_888

    assert shop.balances()[PENDING] == 0
    assert shop.balances()[AVAILABLE] == 9_440 - 1_888
    row = order_row(shop, order_id)
    assert row.status == OrderStatus.COMPLETED
    assert row.funds_released_at is not None
    before = shop.snapshot()
    assert release(shop, order_id) == 9_440 - 1_888  # a retry releases nothing more
    assert shop.snapshot() == before


def test_a_refund_after_release_takes_from_available(shop: Shop) -> None:
    order_id = shop.paid_order()
    release(shop, order_id)

    asked = refund(shop, order_id, amount=5_000)

    assert asked.from_available
    assert shop.balances()[PENDING] == 0
    assert shop.balances()[AVAILABLE] == 9_440 - 4_720
    assert shop.balances()[IN_FLIGHT] == 5_000


def test_a_release_retried_after_the_order_was_refunded_in_full_moves_nothing(
    shop: Shop,
) -> None:
    """A release retried after its commit (its worker died before reporting it) once the
    merchant refunded the whole order: a refund never moves the order's status (there is
    no refunded-by-the-merchant status to overwrite), and the retry posts nothing."""
    order_id = shop.paid_order()
    assert release(shop, order_id) == 9_440
    complete(shop, refund(shop, order_id, amount=10_000).id)
    refunded = shop.snapshot()
    assert refunded["orders"] == [(order_id, OrderStatus.COMPLETED, 10_000, True)]

    assert release(shop, order_id) == 0  # what is left of the share: nothing
    assert shop.snapshot() == refunded
    assert shop.balances()[AVAILABLE] == 0


def test_a_refund_after_payout_is_clawed_back_from_the_next_payout(shop: Shop) -> None:
    first_order = shop.paid_order()
    release(shop, first_order)
    paid_out = statement(shop, 1)
    assert paid_out is not None and paid_out.payout_amount == 9_440
    with Session(shop.engine) as session, session.begin():
        mark_payout_paid(session, payout_of(shop, paid_out).id, "bank-ref-1")

    refund(shop, first_order, amount=5_000)  # the merchant already has its 9440
    assert shop.balances()[AVAILABLE] == -4_720

    owed = statement(shop, 2)
    assert owed is not None
    assert (owed.opening_balance, owed.refunded_amount) == (0, 4_720)
    assert (owed.payout_amount, owed.closing_balance) == (0, -4_720)

    release(shop, shop.paid_order())
    recovered = statement(shop, 3)
    assert recovered is not None
    assert recovered.opening_balance == -4_720
    assert recovered.clawback_amount == 4_720
    assert (recovered.gross_amount, recovered.channel_fee_amount) == (10_000, 60)
    assert recovered.commission_amount == 500
    assert recovered.payout_amount == 9_440 - 4_720
    assert recovered.closing_balance == 0
    assert all(closes(s) for s in (paid_out, owed, recovered))
    assert shop.balances()[AVAILABLE] == 0
    assert shop.balances()[IN_TRANSIT] == 4_720


def test_a_payout_never_overdraws_available(shop: Shop) -> None:
    order_id = shop.paid_order()
    release(shop, order_id)
    before = shop.snapshot()

    with pytest.raises(InsufficientFunds):
        start_payout_directly(shop, 9_441)
    assert shop.snapshot() == before

    made = statement(shop, 1)
    assert made is not None and made.payout_amount == 9_440
    refund(shop, order_id, amount=10_000)  # clawback: available -9440
    before = shop.snapshot()
    with pytest.raises(InsufficientFunds):
        start_payout_directly(shop, 1)
    assert shop.snapshot() == before

    owed = statement(shop, 2)  # a negative balance pays nothing
    assert owed is not None and owed.payout_amount == 0
    assert payout_count(shop) == 1


def test_preparing_a_day_twice_gives_one_statement_and_one_payout(shop: Shop) -> None:
    release(shop, shop.paid_order())
    first = statement(shop, 1)
    assert first is not None
    release(shop, shop.paid_order())  # posted after the statement: the next day's

    again = statement(shop, 1)

    assert again is not None
    assert again.model_dump() == first.model_dump()
    assert payout_count(shop) == 1
    assert count_entries(shop, EntryKind.PAYOUT_STARTED) == 1
    assert shop.balances()[AVAILABLE] == 9_440
    assert shop.balances()[IN_TRANSIT] == 9_440
    next_day = statement(shop, 2)
    assert next_day is not None and next_day.gross_amount == 10_000


def test_nothing_to_settle_makes_no_statement(shop: Shop) -> None:
    shop.paid_order()  # not released: nothing available yet
    assert statement(shop, 1) is None


def test_a_returned_payout_is_available_again_and_shown_on_the_next_statement(
    shop: Shop,
) -> None:
    release(shop, shop.paid_order())
    made = statement(shop, 1)
    assert made is not None
    payout_id = payout_of(shop, made).id

    with Session(shop.engine) as session, session.begin():
        returned = mark_payout_returned(session, payout_id, "account_closed")
        assert (returned.status, returned.failure_reason) == (PayoutStatus.FAILED, "account_closed")
    before = shop.snapshot()
    with Session(shop.engine) as session, session.begin():
        mark_payout_returned(session, payout_id, "again")
        assert mark_payout_paid(session, payout_id, "late-ref").status == PayoutStatus.FAILED
    assert shop.snapshot() == before
    assert shop.balances()[AVAILABLE] == 9_440
    assert shop.balances()[IN_TRANSIT] == 0

    retry = statement(shop, 2)

    assert retry is not None
    assert (retry.opening_balance, retry.gross_amount, retry.returned_amount) == (0, 0, 9_440)
    assert (retry.payout_amount, retry.closing_balance) == (9_440, 0)
    assert closes(retry)
    with Session(shop.engine) as session, session.begin():
        paid = mark_payout_paid(session, payout_of(shop, retry).id, "bank-ref-2")
        assert (paid.status, paid.bank_reference) == (PayoutStatus.PAID, "bank-ref-2")
    assert shop.balances()[IN_TRANSIT] == 0
    assert shop.entry_totals()[AccountKind.BANK] == -9_440


def test_buyers_may_ask_only_within_the_window_merchants_and_operators_always(
    shop: Shop,
) -> None:
    old = shop.paid_order(paid_at=datetime.now(UTC) - WINDOW - timedelta(minutes=1))
    recent = shop.paid_order(paid_at=datetime.now(UTC) - WINDOW + timedelta(minutes=1))

    assert rejection(shop, old, amount=100, by=Requester.BUYER) == "refund_window_closed"
    assert refund(shop, old, amount=100, by=Requester.MERCHANT).amount == 100
    assert refund(shop, old, amount=100, by=Requester.OPERATOR).amount == 100
    assert refund(shop, recent, amount=100, by=Requester.BUYER).amount == 100


def test_statement_numbers_add_up_and_match_the_orders_they_cover(shop: Shop) -> None:
    fee, commission = Decimal("0.02"), Decimal("0.1")
    early = shop.paid_order()  # refunded before release
    late = shop.paid_order(channel_fee_rate=fee, commission_rate=commission)  # and after
    open_order = shop.paid_order()  # never released: not on the statement
    before_release = refund(shop, early, amount=1_234)
    fail(shop, refund(shop, early, amount=100).id)  # failed before release: moves nothing
    refund(shop, open_order, amount=500)
    release(shop, early)
    release(shop, late)
    after_release = refund(shop, late, amount=4_321)
    complete(shop, after_release.id)

    made = statement(shop, 1)

    assert made is not None
    splits = [SPLIT, split_payment(10_000, fee, commission)]
    refunded = before_release.merchant_net_amount + after_release.merchant_net_amount
    assert made.gross_amount == 20_000
    assert made.channel_fee_amount == sum(s.channel_fee_amount for s in splits)
    assert made.commission_amount == sum(s.commission_amount for s in splits)
    assert made.refunded_amount == refunded
    assert made.order_count == 2
    assert (made.opening_balance, made.returned_amount, made.clawback_amount) == (0, 0, 0)
    assert made.payout_amount == sum(s.merchant_net_amount for s in splits) - refunded
    assert made.closing_balance == 0
    assert closes(made)
    assert shop.balances()[AVAILABLE] == 0
    assert shop.balances()[IN_TRANSIT] == made.payout_amount
    assert shop.balances()[PENDING] == 9_440 - 472  # the open order less its refund's net
    with Session(shop.engine) as session:
        covered = session.execute(covered_entry_ids(made)).scalars().all()
    assert sorted(covered) == sorted(
        [
            funds_release_entry_id(early),
            funds_release_entry_id(late),
            refund_reservation_entry_id(after_release.id),
            payout_entry_id(payout_of(shop, made).id, "started"),
        ]
    )
