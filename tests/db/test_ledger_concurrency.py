"""Racing refunds, releases and payouts on one merchant's money.

Sixteen threads, each with its own session and transaction, start together behind a
barrier. On PostgreSQL they contend for the order and account rows that
`SELECT ... FOR UPDATE` locks; on SQLite `BEGIN IMMEDIATE` makes them take turns.
Either way the outcome must be one that running them one after the other could give.
Nothing here retries: the code under test locks before it reads, so a deadlock or a
serialization failure is a finding, not noise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, text
from sqlmodel import Session, col, func, select

from db.ledger import InsufficientFunds
from db.order_money import release_funds, reserve_refund
from db.settlement import prepare_statement
from db.tables import JournalEntry, Order, Payout, Posting, Refund, Statement
from domain.keys import refund_reservation_entry_id
from domain.ledger import AccountKind, EntryKind
from domain.refunds import RefundAsk, RefundRejected, Requester
from tests.db.conftest import Shop, new_id

THREADS = 16
WINDOW = timedelta(days=14)
FIRST_DAY = datetime.now(UTC).date() + timedelta(days=1)  # cutoffs are `now`
NET = 9_440  # the merchant's share of each 10000 order (0.6% fee, 5% commission)

Job = Callable[[Session], object]


@dataclass(frozen=True)
class Outcome:
    name: str
    value: object = None
    refused: Exception | None = None  # a business refusal: RefundRejected, InsufficientFunds
    error: Exception | None = None  # anything else: a deadlock, a duplicate key...


def race(engine: Engine, jobs: Sequence[tuple[str, Job]]) -> list[Outcome]:
    """Run every job in its own thread and transaction, all released at once."""
    barrier = threading.Barrier(len(jobs))

    def run(name: str, job: Job) -> Outcome:
        barrier.wait()
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return Outcome(name, job(session))
        except (RefundRejected, InsufficientFunds) as refused:
            return Outcome(name, refused=refused)
        except Exception as error:
            return Outcome(name, error=error)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(lambda named: run(*named), jobs))


def ask_refund(order_id: str, amount: int, refund_id: str | None = None) -> Job:
    ask = RefundAsk(
        refund_id=refund_id or new_id("rf"),
        order_id=order_id,
        requested_by=Requester.MERCHANT,
        amount=amount,
    )
    return lambda session: reserve_refund(session, ask, WINDOW)


def settle_day(shop: Shop, day: date) -> Job:
    def settle(session: Session) -> Statement | None:
        return prepare_statement(session, shop.merchant_id, shop.currency, day, datetime.now(UTC))

    return settle


def release(order_id: str) -> Job:
    return lambda session: release_funds(session, order_id)


def completed_order(shop: Shop) -> str:
    order_id = shop.paid_order()
    with Session(shop.engine) as session, session.begin():
        release_funds(session, order_id)
    return order_id


def errors(outcomes: Sequence[Outcome]) -> list[str]:
    return [f"{o.name}: {type(o.error).__name__}: {o.error}" for o in outcomes if o.error]


def accepted(outcomes: Sequence[Outcome], name: str) -> list[Refund]:
    return [o.value for o in outcomes if o.name == name and isinstance(o.value, Refund)]


def available_replay(shop: Shop) -> list[tuple[str, int, int]]:
    """(entry kind, amount, balance after) of every movement on available, in the order
    the movements happened (posting ids grow while the account's row lock is held)."""
    account = shop.account(AccountKind.MERCHANT_AVAILABLE)
    with Session(shop.engine) as session:
        rows = session.exec(
            select(JournalEntry.kind, Posting.amount)
            .join(JournalEntry, col(JournalEntry.id) == Posting.entry_id)
            .where(Posting.account == account)
            .order_by(col(Posting.id))
        ).all()
    replay, balance = [], 0
    for kind, amount in rows:
        balance -= amount  # credit-normal
        replay.append((kind, -amount, balance))
    return replay


def test_racing_refunds_and_payouts_never_take_more_than_there_is(shop: Shop) -> None:
    """Refunds asking more than an order's worth, a release, and payouts for three days,
    all on one merchant's available balance at once."""
    target, _, _ = (completed_order(shop) for _ in range(3))
    open_order = shop.paid_order()
    jobs: list[tuple[str, Job]] = [("target", ask_refund(target, 1_500)) for _ in range(9)]
    jobs += [("open", ask_refund(open_order, 4_000)) for _ in range(3)]
    jobs += [("release", release(open_order))]
    jobs += [("payout", settle_day(shop, FIRST_DAY + timedelta(days=n))) for n in range(3)]
    assert len(jobs) == THREADS

    outcomes = race(shop.engine, jobs)

    assert errors(outcomes) == []
    # Exactly as many refunds as fit, judged one after the other under the order's lock.
    assert [r.amount for r in accepted(outcomes, "target")] == [1_500] * 6
    assert [r.amount for r in accepted(outcomes, "open")] == [4_000] * 2
    with Session(shop.engine) as session:
        refunded = session.exec(select(Order.refunded_amount).where(Order.id == target)).one()
    assert refunded == 9_000 <= 10_000

    # A payout never overdraws available; only refunds ever take it below zero.
    replay = available_replay(shop)
    for kind, amount, after in replay:
        if kind == EntryKind.PAYOUT_STARTED:
            assert amount < 0 and after >= 0, replay
        if after < 0 and amount < 0:
            assert kind == EntryKind.REFUND_RESERVED, replay

    released_open = next(o.value for o in outcomes if o.name == "release")
    assert isinstance(released_open, int)
    from_available = sum(
        r.merchant_net_amount
        for name in ("target", "open")
        for r in accepted(outcomes, name)
        if r.from_available
    )
    with Session(shop.engine) as session:
        payouts = session.exec(
            select(func.coalesce(func.sum(Payout.amount), 0)).where(
                Payout.merchant_id == shop.merchant_id
            )
        ).one()
    balances = shop.balances()
    assert balances[AccountKind.MERCHANT_PENDING] == 0
    assert balances[AccountKind.MERCHANT_AVAILABLE] == (
        3 * NET + released_open - from_available - payouts
    )
    assert balances[AccountKind.MERCHANT_IN_TRANSIT] == payouts
    assert balances[AccountKind.REFUNDS_IN_FLIGHT] == 9_000 + 8_000
    # No money appeared or vanished: the channel still holds all four payments.
    totals = shop.entry_totals()
    assert totals[AccountKind.CHANNEL_CLEARING] == 40_000
    assert sum(v for k, v in totals.items() if k != AccountKind.CHANNEL_CLEARING) == 40_000
    assert shop.ledger_problems() == []


def test_racing_asks_with_one_refund_id_make_one_refund(shop: Shop) -> None:
    """A retried ask racing its first attempt: one refund, one reservation."""
    order_id = shop.paid_order()
    refund_id = new_id("rf")

    outcomes = race(
        shop.engine, [("same", ask_refund(order_id, 4_000, refund_id)) for _ in range(THREADS)]
    )

    with Session(shop.engine) as session:
        refunds = session.exec(select(Refund).where(Refund.order_id == order_id)).all()
        reservations = session.exec(
            select(JournalEntry.id).where(
                JournalEntry.order_id == order_id,
                JournalEntry.kind == EntryKind.REFUND_RESERVED.value,
            )
        ).all()
        refunded = session.exec(select(Order.refunded_amount).where(Order.id == order_id)).one()
    assert [(r.id, r.amount) for r in refunds] == [(refund_id, 4_000)]
    assert reservations == [refund_reservation_entry_id(refund_id)]
    assert refunded == 4_000
    assert shop.balances()[AccountKind.MERCHANT_PENDING] == NET - 3_776
    assert any(isinstance(o.value, Refund) for o in outcomes)
    # What the others are told: `test_a_retry_waiting_on_the_first_ask_gets_its_refund`.


def test_racing_runs_of_one_day_make_one_statement_and_one_payout(shop: Shop) -> None:
    completed_order(shop)
    day = FIRST_DAY

    race(shop.engine, [("day", settle_day(shop, day)) for _ in range(THREADS)])

    with Session(shop.engine) as session:
        made = session.exec(select(Statement).where(Statement.merchant_id == shop.merchant_id))
        payouts = session.exec(select(Payout).where(Payout.merchant_id == shop.merchant_id))
        assert [(s.day, s.payout_amount) for s in made] == [(day.isoformat(), NET)]
        assert [p.amount for p in payouts] == [NET]
    assert shop.balances()[AccountKind.MERCHANT_IN_TRANSIT] == NET
    # What the others are told: `test_a_run_waiting_on_the_first_run_gets_its_statement`.


# -- One transaction waiting on another's lock, step by step -----------------------------


def after_waiting(engine: Engine, first: Job, second: Job) -> tuple[object, Outcome]:
    """Run `first`, make `second` wait on the locks it holds, then commit `first`.

    The same interleaving the races above hit by chance, made certain: `second` starts
    while `first` is uncommitted and carries on only once `first` has committed.
    """
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            result = first(session)
            waiting = ThreadPoolExecutor(max_workers=1)
            later = waiting.submit(race, engine, [("second", second)])
            if engine.dialect.name == "postgresql":
                holder = session.exec(select(func.pg_backend_pid())).one()
                _wait_until_blocked(engine, holder)
            else:  # `second` waits in BEGIN IMMEDIATE; give its thread time to get there
                time.sleep(0.3)
        outcome = later.result(timeout=60)[0]
        waiting.shutdown()
    return result, outcome


def _wait_until_blocked(engine: Engine, holder: int) -> None:
    deadline = time.monotonic() + 10
    query = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.execute(query, {"pid": holder}).scalar_one():
                return
        time.sleep(0.01)
    raise AssertionError("the second transaction never waited on the first one's locks")


def test_a_retry_waiting_on_the_first_ask_gets_its_refund(shop: Shop) -> None:
    order_id = shop.paid_order()
    refund_id = new_id("rf")
    ask = ask_refund(order_id, 6_000, refund_id)

    first, second = after_waiting(shop.engine, ask, ask)

    assert isinstance(first, Refund)
    assert second.error is None and second.refused is None, second
    assert isinstance(second.value, Refund)
    assert (second.value.id, second.value.amount) == (refund_id, 6_000)


def test_a_run_waiting_on_the_first_run_gets_its_statement(shop: Shop) -> None:
    completed_order(shop)
    run = settle_day(shop, FIRST_DAY)

    first, second = after_waiting(shop.engine, run, run)

    assert isinstance(first, Statement)
    assert second.error is None, second
    assert isinstance(second.value, Statement) and second.value.id == first.id


def test_a_statement_cut_off_before_the_previous_payout_opens_with_its_closing(
    shop: Shop,
) -> None:
    """A run takes `now`, then waits while the previous day's run pays out."""
    completed_order(shop)
    taken_before_waiting = datetime.now(UTC)
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        previous = settle_day(shop, FIRST_DAY)(session)
    assert isinstance(previous, Statement)
    assert (previous.payout_amount, previous.closing_balance) == (NET, 0)

    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        late = prepare_statement(
            session,
            shop.merchant_id,
            shop.currency,
            FIRST_DAY + timedelta(days=1),
            taken_before_waiting,
        )

    assert shop.balances()[AccountKind.MERCHANT_AVAILABLE] == 0
    # Nothing happened since the previous statement: no statement, or one of nothing.
    assert late is None or (late.opening_balance, late.closing_balance) == (0, 0), late
