"""Quoted orders against a model: a Hypothesis state machine pays a CNY shop's orders in
USD, JPY and EUR, refunds parts of them (completed or failed), lets the channel settle
at a rate near ours, and releases them, on the real SQLite and PostgreSQL books.

After every step: each currency's postings of the shop's orders sum to zero (no minor
unit made or lost), every order's identity holds in each currency (`db.fx_books`), the
buyer never gets back more than they paid, and an order the channel has settled with
nothing open has flat FX positions.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from db.fx_books import fx_order_problems, open_position, order_quote, realise_order_fx
from db.order_money import complete_refund, fail_refund, release_funds, reserve_refund
from db.tables import JournalEntry, Order, Payment, Posting, Refund
from domain.refunds import RefundAsk, RefundRejected, Requester
from tests.db.conftest import Shop, new_id, open_shop
from tests.db.fx_orders import quoted_paid_order
from tests.db.test_fx_books import near_mid_settlement

WINDOW = timedelta(days=14)


class QuotedBooks(RuleBasedStateMachine):
    engine: ClassVar[Engine]
    orders = Bundle("orders")
    pending = Bundle("pending")

    def __init__(self) -> None:
        super().__init__()
        self.shop: Shop = open_shop(self.engine)
        self.order_ids: list[str] = []

    @rule(
        target=orders,
        presentment=st.sampled_from(["USD", "JPY", "EUR"]),
        price=st.integers(min_value=100, max_value=2_000_000),
        markup=st.integers(min_value=0, max_value=500),
    )
    def pay(self, presentment: str, price: int, markup: int) -> str:
        order_id, _ = quoted_paid_order(self.shop, presentment, price, markup)
        self.order_ids.append(order_id)
        return order_id

    @rule(target=pending, order_id=orders, share=st.integers(min_value=1, max_value=100))
    def ask_refund(self, order_id: str, share: int) -> str:
        with Session(self.engine) as session:
            order = session.get_one(Order, order_id)
            left = order.payable_amount - order.refunded_amount
        refund_id = new_id("rf")
        ask = RefundAsk(
            refund_id=refund_id,
            order_id=order_id,
            requested_by=Requester.OPERATOR,
            amount=max(1, left * share // 100),
        )
        try:
            with Session(self.engine) as session, session.begin():
                reserve_refund(session, ask, WINDOW)
        except RefundRejected as rejected:
            # Nothing left, or worth less than one unit of the buyer's currency.
            assert left == 0 or rejected.code == "amount_too_small"
        return refund_id

    @rule(refund_id=pending, succeeded=st.booleans())
    def decide_refund(self, refund_id: str, succeeded: bool) -> None:
        with Session(self.engine) as session, session.begin():
            if session.get(Refund, refund_id) is None:
                return  # it was rejected
            if succeeded:
                complete_refund(session, refund_id)
            else:
                fail_refund(session, refund_id, "declined")

    @rule(order_id=orders, drift_bp=st.integers(min_value=-300, max_value=300))
    def channel_settles(self, order_id: str, drift_bp: int) -> None:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            order = session.get_one(Order, order_id)
            quote = order_quote(session, order)
            assert quote is not None
            still_open = open_position(session, order, quote).presentment_open
            if still_open == 0:
                return
            settled = near_mid_settlement(quote, still_open, Decimal(drift_bp) / 10_000)
            if settled == 0:
                return
            realise_order_fx(session, order_id, new_id("sweep"), settled)
        self._assert_flat(order_id)

    @rule(order_id=orders)
    def release(self, order_id: str) -> None:
        with Session(self.engine) as session, session.begin():
            release_funds(session, order_id)

    def _assert_flat(self, order_id: str) -> None:
        sums = self._sums([order_id])
        fx = {account: total for account, total in sums.items() if "fx_position" in account}
        assert all(total == 0 for total in fx.values()), fx

    def _sums(self, order_ids: list[str]) -> dict[str, int]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(Posting.account, func.sum(Posting.amount))
                .join(JournalEntry, col(JournalEntry.id) == Posting.entry_id)
                .where(col(JournalEntry.order_id).in_(order_ids))
                .group_by(col(Posting.account))
            ).all()
        return {account: int(total) for account, total in rows}

    @invariant()
    def no_unit_made_or_lost(self) -> None:
        per_currency: Counter[str] = Counter()
        for account, total in self._sums(self.order_ids).items():
            per_currency[account.rsplit(":", 1)[1]] += total
        assert all(total == 0 for total in per_currency.values()), per_currency

    @invariant()
    def every_order_reconciles_in_each_currency(self) -> None:
        with Session(self.engine) as session:
            for order_id in self.order_ids:
                order = session.get_one(Order, order_id)
                payment = session.exec(select(Payment).where(Payment.order_id == order_id)).one()
                assert fx_order_problems(session, order, payment.amount) == []
                assert 0 <= order.refunded_amount <= order.payable_amount


def test_quoted_orders_never_make_or_lose_a_minor_unit(ledger_engine: Engine) -> None:
    QuotedBooks.engine = ledger_engine
    run_state_machine_as_test(
        QuotedBooks,
        settings=settings(
            max_examples=4,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
