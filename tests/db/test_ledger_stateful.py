"""The ledger against a model: random orders, refunds, releases, statements and payouts.

A Hypothesis state machine drives the real database functions one transaction at a
time and keeps its own account of where every minor unit of one shop should be. After
each step the database must agree with the model, balance after balance, order by
order, statement by statement, and `db.reconcile` must find nothing wrong with the
shop (the whole database is reconciled once the module is done). A retry calls a
function again with a key it has already seen, and nothing may move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.order_money import (
    capture_payment,
    complete_refund,
    fail_refund,
    locked_order,
    release_funds,
    reserve_refund,
)
from db.reconcile import order_breakdown
from db.settlement import (
    mark_payout_paid,
    mark_payout_returned,
    prepare_statement,
    statement_payout,
)
from db.tables import Order, Refund, Statement
from domain.ledger import AccountKind
from domain.refunds import (
    LineRefund,
    RefundAsk,
    RefundRejected,
    RefundStatus,
    Requester,
    line_refund_amount,
)
from domain.settlement import PayoutStatus
from domain.split import Split, split_payment, split_refund, subtract
from tests.db.conftest import Line, Shop, open_shop

WINDOW = timedelta(days=14)
RATES = [Decimal(r) for r in ("0", "0.006", "0.05", "0.35", "0.6", "1")]
NOTHING = Split(payable_amount=0, channel_fee_amount=0, commission_amount=0, merchant_net_amount=0)
# Examples x steps by Hypothesis profile (tests/conftest.py): sized to fit `make test`,
# and about eighty times the steps in `make test-long`.
MACHINE_RUNS = {"ci": (6, 40), "long": (200, 100)}


def machine_settings() -> settings:
    examples, steps = MACHINE_RUNS.get(settings.get_current_profile_name(), MACHINE_RUNS["ci"])
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,  # the tree is shared: keep no example database in it
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def added(a: Split, b: Split) -> Split:
    return Split(
        payable_amount=a.payable_amount + b.payable_amount,
        channel_fee_amount=a.channel_fee_amount + b.channel_fee_amount,
        commission_amount=a.commission_amount + b.commission_amount,
        merchant_net_amount=a.merchant_net_amount + b.merchant_net_amount,
    )


@dataclass
class OrderModel:
    split: Split
    lines: list[Line]
    paid_long_ago: bool
    released: bool = False
    refunded: Split = NOTHING  # refunds asked and not failed
    units: list[int] = field(default_factory=lambda: [0, 0])  # refunded, by line
    succeeded: int = 0
    in_flight: int = 0

    @property
    def remaining(self) -> Split:
        return subtract(self.split, self.refunded)


@dataclass
class RefundModel:
    order_id: str
    parts: Split
    lines: list[tuple[int, int]]
    status: RefundStatus = RefundStatus.PENDING


@dataclass
class Period:
    """What the next statement must show: the entries on available since the last one."""

    released: list[Split] = field(default_factory=list)
    released_amount: int = 0
    refunded_from_available: int = 0
    failed_to_available: int = 0
    returned: int = 0
    touched: bool = False  # any entry on available at all


class LedgerMachine(RuleBasedStateMachine):
    orders = Bundle("orders")
    refunds = Bundle("refunds")
    payouts = Bundle("payouts")

    engine: ClassVar[Engine]  # set by the test, per database

    def __init__(self) -> None:
        super().__init__()
        self.shop: Shop = open_shop(self.engine)
        self.order_models: dict[str, OrderModel] = {}
        self.refund_models: dict[str, RefundModel] = {}
        self.payout_models: dict[str, tuple[int, PayoutStatus]] = {}
        self.balance = dict.fromkeys(AccountKind, 0)  # the shop's normal balances, by kind
        self.taken_from_available = 0  # every refund's merchant part taken from available
        self.period = Period()
        self.last_closing = 0
        self.first_day = datetime.now(UTC).date() + timedelta(days=1)  # cutoffs are `now`
        self.days = 0
        self.last_statement: tuple[int, str] | None = None  # (day, statement id)
        self.asks = 0
        self.stirred: set[str] = set()  # orders the current step acted on

    # -- transactions -------------------------------------------------------------------

    def _reserve(self, ask: RefundAsk) -> Refund:
        with Session(self.shop.engine, expire_on_commit=False) as session, session.begin():
            return reserve_refund(session, ask, WINDOW)

    def _settle_refund(self, refund_id: str, succeed: bool) -> Refund:
        with Session(self.shop.engine, expire_on_commit=False) as session, session.begin():
            if succeed:
                return complete_refund(session, refund_id)
            return fail_refund(session, refund_id, "channel_refused")

    def _release(self, order_id: str) -> int:
        with Session(self.shop.engine) as session, session.begin():
            return release_funds(session, order_id)

    def _statement(self, day_index: int) -> tuple[Statement | None, str | None]:
        day = self.first_day + timedelta(days=day_index)
        with Session(self.shop.engine, expire_on_commit=False) as session, session.begin():
            made = prepare_statement(
                session, self.shop.merchant_id, self.shop.currency, day, datetime.now(UTC)
            )
            payout = statement_payout(session, made) if made is not None else None
            return made, payout.id if payout is not None else None

    def _settle_payout(self, payout_id: str, paid: bool) -> PayoutStatus:
        with Session(self.shop.engine) as session, session.begin():
            if paid:
                return PayoutStatus(mark_payout_paid(session, payout_id, "bank-ref").status)
            return PayoutStatus(mark_payout_returned(session, payout_id, "account_closed").status)

    # -- the model's bookkeeping --------------------------------------------------------

    def _move_merchant_part(self, order: OrderModel, amount: int) -> None:
        """Move the merchant's part of a refund (amount < 0 takes, > 0 gives back)."""
        if not order.released:
            self.balance[AccountKind.MERCHANT_PENDING] += amount
            return
        self.balance[AccountKind.MERCHANT_AVAILABLE] += amount
        if amount < 0:
            self.period.refunded_from_available -= amount
            self.taken_from_available -= amount
        else:
            self.period.failed_to_available += amount
        self.period.touched |= amount != 0

    def _reserved(self, order: OrderModel, parts: Split) -> None:
        self._move_merchant_part(order, -parts.merchant_net_amount)
        self.balance[AccountKind.PLATFORM_COMMISSION] -= parts.commission_amount
        self.balance[AccountKind.CHANNEL_FEE] -= parts.channel_fee_amount
        self.balance[AccountKind.REFUNDS_IN_FLIGHT] += parts.payable_amount
        order.refunded = added(order.refunded, parts)
        order.in_flight += parts.payable_amount

    def _next_refund_id(self) -> str:
        self.asks += 1
        return f"{self.shop.merchant_id}-rf{self.asks}"

    def _expect_rejection(self, order: OrderModel, by: Requester) -> str | None:
        if by == Requester.BUYER and order.paid_long_ago:
            return "refund_window_closed"
        return None

    def _judge_amount(self, order: OrderModel, amount: int) -> str | None:
        if amount <= 0:
            return "amount_invalid"
        if amount > order.remaining.payable_amount:
            return "amount_exceeds_refundable"
        return None

    def _ask(
        self, ask: RefundAsk, expected: str | None, amount: int, asked: list[tuple[int, int]]
    ) -> str | MultipleResults[str]:
        """Ask; the outcome, rejection code or parts, must be what the model expected."""
        order = self.order_models[ask.order_id]
        self.stirred.add(ask.order_id)
        before = self.shop.snapshot() if expected is not None else None
        try:
            row = self._reserve(ask)
        except RefundRejected as rejected:
            assert rejected.code == expected, f"rejected {rejected.code}, model: {expected}"
            assert self.shop.snapshot() == before, "a rejected refund left something behind"
            return multiple()
        assert expected is None, f"accepted, but the model expected {expected}"
        parts = split_refund(order.remaining, amount)
        assert (row.amount, row.channel_fee_amount, row.commission_amount) == (
            parts.payable_amount,
            parts.channel_fee_amount,
            parts.commission_amount,
        )
        assert row.merchant_net_amount == parts.merchant_net_amount
        assert row.from_available == order.released
        self._reserved(order, parts)
        for line_no, quantity in asked:
            order.units[line_no] += quantity
        self.refund_models[ask.refund_id] = RefundModel(ask.order_id, parts, asked)
        return ask.refund_id

    # -- rules ----------------------------------------------------------------------------

    @rule(
        target=orders,
        payable=st.integers(1, 1_000_000),
        cut=st.integers(0, 1_000_000),
        quantities=st.tuples(st.integers(1, 4), st.integers(1, 4)),
        fee_rate=st.sampled_from(RATES),
        commission_rate=st.sampled_from(RATES),
        paid_long_ago=st.booleans(),
    )
    def new_paid_order(
        self,
        payable: int,
        cut: int,
        quantities: tuple[int, int],
        fee_rate: Decimal,
        commission_rate: Decimal,
        paid_long_ago: bool,
    ) -> str:
        first = cut % (payable + 1)
        lines = []
        for quantity, line_payable in zip(quantities, (first, payable - first), strict=True):
            unit = -(-line_payable // quantity)
            lines.append(Line(quantity, unit, unit * quantity - line_payable))
        paid_at = datetime.now(UTC) - 2 * WINDOW if paid_long_ago else None
        order_id = self.shop.paid_order(
            lines, channel_fee_rate=fee_rate, commission_rate=commission_rate, paid_at=paid_at
        )
        split = split_payment(payable, fee_rate, commission_rate)
        self.order_models[order_id] = OrderModel(split, lines, paid_long_ago)
        self.stirred.add(order_id)
        self.balance[AccountKind.CHANNEL_CLEARING] += payable
        self.balance[AccountKind.MERCHANT_PENDING] += split.merchant_net_amount
        self.balance[AccountKind.PLATFORM_COMMISSION] += split.commission_amount
        self.balance[AccountKind.CHANNEL_FEE] += split.channel_fee_amount
        return order_id

    @rule(
        target=refunds,
        order_id=orders,
        percent=st.integers(0, 120),
        nudge=st.integers(-1, 1),
        by=st.sampled_from(Requester),
    )
    def refund_an_amount(
        self, order_id: str, percent: int, nudge: int, by: Requester
    ) -> str | MultipleResults[str]:
        order = self.order_models[order_id]
        amount = order.remaining.payable_amount * percent // 100 + nudge
        expected = self._expect_rejection(order, by) or self._judge_amount(order, amount)
        ask = RefundAsk(
            refund_id=self._next_refund_id(),
            order_id=order_id,
            requested_by=by,
            amount=amount,
        )
        return self._ask(ask, expected, amount, [])

    @rule(
        target=refunds,
        order_id=orders,
        asked=st.lists(
            st.tuples(st.sampled_from([0, 1, 0, 1, 2]), st.integers(1, 4)),  # 2: no such line
            min_size=1,
            max_size=2,
            unique_by=lambda line: line[0],
        ),
        by=st.sampled_from(Requester),
    )
    def refund_lines(
        self, order_id: str, asked: list[tuple[int, int]], by: Requester
    ) -> str | MultipleResults[str]:
        order = self.order_models[order_id]
        expected = self._expect_rejection(order, by)
        amount = 0
        for line_no, quantity in asked:  # judged line by line, in the order asked
            if expected is not None:
                break
            if line_no >= len(order.lines):
                expected = "line_invalid"
                break
            line = order.lines[line_no]
            done = order.units[line_no]
            if done + quantity > line.quantity:
                expected = "quantity_exceeds_refundable"
                break
            amount += line_refund_amount(line.payable_amount, line.quantity, done, quantity)
        expected = expected or self._judge_amount(order, amount)
        ask = RefundAsk(
            refund_id=self._next_refund_id(),
            order_id=order_id,
            requested_by=by,
            lines=tuple(LineRefund(line_no=n, quantity=q) for n, q in asked),
        )
        return self._ask(ask, expected, amount, asked)

    @rule(refund_id=refunds, succeed=st.booleans())
    def channel_answers_refund(self, refund_id: str, succeed: bool) -> None:
        model = self.refund_models[refund_id]
        row = self._settle_refund(refund_id, succeed)
        if model.status != RefundStatus.PENDING:
            assert row.status == model.status  # a late answer changes nothing
            return
        order = self.order_models[model.order_id]
        self.stirred.add(model.order_id)
        order.in_flight -= model.parts.payable_amount
        self.balance[AccountKind.REFUNDS_IN_FLIGHT] -= model.parts.payable_amount
        if succeed:
            model.status = RefundStatus.SUCCEEDED
            order.succeeded += model.parts.payable_amount
            self.balance[AccountKind.CHANNEL_CLEARING] -= model.parts.payable_amount
        else:
            model.status = RefundStatus.FAILED
            self._move_merchant_part(order, model.parts.merchant_net_amount)
            self.balance[AccountKind.PLATFORM_COMMISSION] += model.parts.commission_amount
            self.balance[AccountKind.CHANNEL_FEE] += model.parts.channel_fee_amount
            order.refunded = subtract(order.refunded, model.parts)
            for line_no, quantity in model.lines:
                order.units[line_no] -= quantity
        assert row.status == model.status

    @rule(order_id=orders)
    def complete_order(self, order_id: str) -> None:
        order = self.order_models[order_id]
        self.stirred.add(order_id)
        left = order.split.merchant_net_amount - order.refunded.merchant_net_amount
        assert self._release(order_id) == left
        if order.released:
            return
        order.released = True
        self.balance[AccountKind.MERCHANT_PENDING] -= left
        self.balance[AccountKind.MERCHANT_AVAILABLE] += left
        if left:  # a release of nothing posts no entry, so no statement shows the order
            self.period.released.append(order.split)
            self.period.released_amount += left
            self.period.touched = True

    @precondition(lambda self: any(o.released for o in self.order_models.values()))
    @rule(target=payouts)
    def settle_next_day(self) -> str | MultipleResults[str]:
        self.days += 1
        made, payout_id = self._statement(self.days)
        available = self.balance[AccountKind.MERCHANT_AVAILABLE]
        # Nothing new and nothing to pay (a clawback still owed is carried, not restated).
        if not self.period.touched and available <= 0:
            assert made is None
            return multiple()
        assert made is not None
        self._check_statement(made, available)
        self.last_statement = (self.days, made.id)
        self.last_closing = made.closing_balance
        self.period = Period()
        payout = max(0, available)
        if payout == 0:
            assert payout_id is None
            return multiple()
        assert payout_id is not None
        self.balance[AccountKind.MERCHANT_AVAILABLE] -= payout
        self.balance[AccountKind.MERCHANT_IN_TRANSIT] += payout
        self.payout_models[payout_id] = (payout, PayoutStatus.PENDING)
        return payout_id

    def _check_statement(self, made: Statement, available: int) -> None:
        p = self.period
        net = sum(s.merchant_net_amount for s in p.released)
        payout = max(0, available)
        assert made.opening_balance == self.last_closing
        assert made.gross_amount == sum(s.payable_amount for s in p.released)
        assert made.channel_fee_amount == sum(s.channel_fee_amount for s in p.released)
        assert made.commission_amount == sum(s.commission_amount for s in p.released)
        assert made.refunded_amount == (
            net - p.released_amount + p.refunded_from_available - p.failed_to_available
        )
        assert made.returned_amount == p.returned
        assert made.clawback_amount == max(0, -self.last_closing)
        assert made.order_count == len(p.released)
        assert (made.payout_amount, made.closing_balance) == (payout, available - payout)

    @rule(payout_id=payouts, paid=st.booleans())
    def bank_answers_payout(self, payout_id: str, paid: bool) -> None:
        amount, status = self.payout_models[payout_id]
        answered = self._settle_payout(payout_id, paid)
        if status != PayoutStatus.PENDING:
            assert answered == status
            return
        self.balance[AccountKind.MERCHANT_IN_TRANSIT] -= amount
        if paid:
            self.balance[AccountKind.BANK] -= amount
        else:
            self.balance[AccountKind.MERCHANT_AVAILABLE] += amount
            self.period.returned += amount
            self.period.touched = True
        self.payout_models[payout_id] = (amount, answered)
        assert answered == (PayoutStatus.PAID if paid else PayoutStatus.FAILED)

    # -- retries: the same key again must move nothing ----------------------------------

    @precondition(lambda self: self.order_models)
    @rule(data=st.data())
    def retry_a_step(self, data: st.DataObject) -> None:
        """Call a function again with a key it has seen (one rule, so retries stay a few
        steps in ten): nothing in the shop's ledger or rows may change."""
        retries = {
            "capture": self._retry_capture,
            "refund": self._retry_refund if self.refund_models else None,
            "channel_answer": self._retry_channel_answer if self._answered_refunds() else None,
            "release": self._retry_release if self._released_orders() else None,
            "statement": self._retry_statement if self.last_statement else None,
            "bank_answer": self._retry_bank_answer if self._answered_payouts() else None,
        }
        retry = data.draw(st.sampled_from([name for name, run in retries.items() if run]))
        before = self.shop.snapshot()
        run = retries[retry]
        assert run is not None
        run(data)
        assert self.shop.snapshot() == before, f"retrying {retry} changed something"

    def _answered_refunds(self) -> list[str]:
        return sorted(k for k, r in self.refund_models.items() if r.status != "pending")

    def _released_orders(self) -> list[str]:
        return sorted(k for k, o in self.order_models.items() if o.released)

    def _answered_payouts(self) -> list[str]:
        return sorted(k for k, (_, s) in self.payout_models.items() if s != "pending")

    def _retry_capture(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.order_models)))
        with Session(self.shop.engine) as session, session.begin():
            split = capture_payment(session, locked_order(session, order_id))
        assert split == self.order_models[order_id].split

    def _retry_refund(self, data: st.DataObject) -> None:
        refund_id = data.draw(st.sampled_from(sorted(self.refund_models)))
        model = self.refund_models[refund_id]
        ask = RefundAsk(
            refund_id=refund_id,
            order_id=model.order_id,
            requested_by=Requester.OPERATOR,
            amount=data.draw(st.integers(1, 1_000_000)),  # a retry may even carry other numbers
        )
        row = self._reserve(ask)
        assert (row.amount, row.status) == (model.parts.payable_amount, model.status)

    def _retry_channel_answer(self, data: st.DataObject) -> None:
        refund_id = data.draw(st.sampled_from(self._answered_refunds()))
        for succeed in (True, False):
            row = self._settle_refund(refund_id, succeed)
            assert row.status == self.refund_models[refund_id].status

    def _retry_release(self, data: st.DataObject) -> None:
        self._release(data.draw(st.sampled_from(self._released_orders())))

    def _retry_statement(self, data: st.DataObject) -> None:
        assert self.last_statement is not None
        day, statement_id = self.last_statement
        made, _ = self._statement(day)
        assert made is not None and made.id == statement_id

    def _retry_bank_answer(self, data: st.DataObject) -> None:
        payout_id = data.draw(st.sampled_from(self._answered_payouts()))
        for paid in (True, False):
            assert self._settle_payout(payout_id, paid) == self.payout_models[payout_id][1]

    # -- what must hold after every step ------------------------------------------------

    @invariant()
    def the_orders_reconcile(self) -> None:
        """The orders this step acted on (all of them at the end of the example) reconcile
        in the ledger and agree with the model: paid = refunded + in flight + merchant
        + commission + channel fee. Checking every order after every step would cost two
        queries per order per step without looking at anything a step changed."""
        stirred, self.stirred = self.stirred, set()
        assert self.shop.ledger_problems(stirred) == []
        with Session(self.shop.engine) as session:
            rows = session.exec(select(Order).where(col(Order.id).in_(stirred)))
            by_id = {row.id: row for row in rows}
            for order_id in stirred:
                model, row = self.order_models[order_id], by_id[order_id]
                parts = order_breakdown(session, order_id)
                left = model.remaining
                assert parts == {
                    "merchant": left.merchant_net_amount,
                    "commission": left.commission_amount,
                    "channel_fee": left.channel_fee_amount,
                    "refunds_in_flight": model.in_flight,
                    "late_payments": 0,
                    "clearing": model.split.payable_amount - model.succeeded,
                }, order_id
                held = parts["merchant"] + parts["commission"] + parts["channel_fee"]
                assert model.split.payable_amount == (
                    model.succeeded + parts["refunds_in_flight"] + held
                )
                assert row.refunded_amount == model.refunded.payable_amount
                assert row.refunded_net_amount == model.refunded.merchant_net_amount

    def teardown(self) -> None:
        self.stirred = set(self.order_models)
        self.the_orders_reconcile()

    @invariant()
    def balances_match_the_model(self) -> None:
        stored = self.shop.balances()
        totals = self.shop.entry_totals()
        for kind, amount in stored.items():
            assert amount == self.balance[kind], kind
            assert totals[kind] == amount, kind  # an own account holds only own entries
        for kind in (AccountKind.PLATFORM_COMMISSION, AccountKind.BANK):
            assert totals[kind] == self.balance[kind], kind
        for kind in (
            AccountKind.MERCHANT_PENDING,
            AccountKind.MERCHANT_IN_TRANSIT,
            AccountKind.REFUNDS_IN_FLIGHT,
        ):
            assert stored[kind] >= 0, kind
        # Only refunds after release take available below zero, never by more than they took.
        assert stored[AccountKind.MERCHANT_AVAILABLE] >= -self.taken_from_available
        # No money appears or vanishes: what the channel and the bank hold is owed to someone.
        assets = (AccountKind.CHANNEL_CLEARING, AccountKind.BANK)
        owed = sum(amount for kind, amount in totals.items() if kind not in assets)
        assert totals[AccountKind.CHANNEL_CLEARING] + totals[AccountKind.BANK] == owed


def test_the_ledger_agrees_with_its_model(ledger_engine: Engine) -> None:
    class OnThisDatabase(LedgerMachine):
        engine = ledger_engine

    run_state_machine_as_test(OnThisDatabase, settings=machine_settings())
