"""Settlement at scale: a seeded day settled by the product's own code, beside its floor.

The product's path is the settlement run's, without Temporal around it: the activities
SettlementRunWorkflow calls (`prepare_page`, page after page: the
MerchantSettlementWorkflow children it then starts are handed their statements and
payouts, and ask the database nothing before the bank), called directly. It writes each
merchant's statement, its coverage and its payout (the payout row and its available -> in
transit entry: the payout request the bank is then asked for; the bank call itself is not
timed).

The floor is what settling cannot do without: one `GROUP BY` over the same postings
(every merchant's sums per account, which give gross, fees, commission and net), then
the statement, payout, payout entry and its two postings per merchant and the balances
they move, written set-wise in one transaction, then rolled back (so the product's run
finds the day unsettled). The goal: the product's run within twice the floor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, bindparam, text
from sqlalchemy.exc import OperationalError

from activities.settlement_records import SettlementRecords
from bench import settlement_seed
from bench.config import BenchConfig, from_env
from bench.figures import Goal, Row, render_table
from bench.stand import bench_database
from db.engine import make_engine, session_factory
from db.migrate import upgrade_to_head
from db.settlement import day_cutoff
from domain.keys import payout_entry_id, payout_id, statement_id
from domain.settlement import SettlementRunInput

GOAL_RATIO = 2.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class SettlementFigures:
    orders: int
    merchants: int
    seed_s: float
    floor_s: float
    run_s: float
    statements: int
    payouts: int

    @property
    def ratio(self) -> float:
        return self.run_s / self.floor_s if self.floor_s else 0.0


def measure(
    engine: Engine, orders: int, merchants: int, say: Callable[[str], None]
) -> SettlementFigures:
    day = datetime.now(UTC).date() - timedelta(days=1)
    began = time.perf_counter()
    settlement_seed.seed(engine, orders, merchants, day)
    seed_s = time.perf_counter() - began
    say(f"  settlement: seeded {orders:,} orders of {merchants:,} merchants in {seed_s:.0f} s")
    floor_s = _timed(lambda: _floor(engine, day))
    say(f"  settlement: GROUP BY and the writes it needs: {floor_s:.1f} s")
    run_s = _timed(lambda: settle_day(engine, day))
    say(f"  settlement: the product's run: {run_s:.1f} s")
    with engine.connect() as db:
        statements = db.execute(text("SELECT COUNT(*) FROM statements")).scalar_one()
        payouts = db.execute(text("SELECT COUNT(*) FROM payouts")).scalar_one()
    return SettlementFigures(orders, merchants, seed_s, floor_s, run_s, statements, payouts)


def settlement_case(
    database: str, work: Path, config: BenchConfig, say: Callable[[str], None]
) -> tuple[dict[str, Any], list[Row]]:
    """The case on a fresh database of its own: its figures (JSON) and table rows."""
    with bench_database(database, work, config.postgres_url) as url:
        upgrade_to_head(url)
        engine = make_engine(url)
        try:
            orders, merchants = config.settlement_orders, config.settlement_merchants
            return reported(database, measure(engine, orders, merchants, say))
        finally:
            engine.dispose()


def reported(database: str, figures: SettlementFigures) -> tuple[dict[str, Any], list[Row]]:
    return {**asdict(figures), "ratio": figures.ratio}, settlement_rows(database, figures)


def settlement_rows(database: str, figures: SettlementFigures) -> list[Row]:
    d = f"[{database}] settlement, {figures.orders:,} orders of {figures.merchants:,} merchants: "
    return [
        Row(d + "one GROUP BY + the writes it needs", figures.floor_s, "s"),
        Row(d + "the product's run (statements + payouts)", figures.run_s, "s"),
        Row(d + "  ratio", figures.ratio, "x", Goal("<=", GOAL_RATIO)),
        Row(d + "  statements / payouts made", figures.statements),
    ]


def _timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def settle_day(engine: Engine, day: date) -> None:
    """What the day's settlement runs do, page by page, without Temporal: each run asks
    `prepare_page` for its page (its children start with their statements and payouts
    made, and ask the database nothing more before the bank)."""
    records = SettlementRecords(session_factory(engine))
    scope = SettlementRunInput(day=day)
    while True:
        page = _retried(partial(records.prepare_page, scope))
        if page.through is None or page.remaining <= len(page.merchants):
            return
        scope = scope.model_copy(update={"after": page.through})


def _retried(step: Callable[[], _T], attempts: int = 5) -> _T:
    """As Temporal retries a local activity that failed: a step is idempotent, and on a busy
    SQLite a writer may wait past its busy timeout ("database is locked")."""
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except OperationalError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


_GROUP_BY = (
    "SELECT e.merchant_id, p.account, SUM(p.amount), COUNT(*) FROM postings AS p"
    " JOIN journal_entries AS e ON e.id = p.entry_id WHERE e.created_at < :cutoff"
    " GROUP BY e.merchant_id, p.account"
)


def _floor(engine: Engine, day: date) -> None:
    cutoff = day_cutoff(day, datetime.now(UTC)).replace(tzinfo=None)
    with engine.connect() as db:
        transaction = db.begin()
        sums: dict[str, dict[str, int]] = {}  # merchant -> account kind -> sum
        group_by = text(_GROUP_BY).bindparams(bindparam("cutoff", type_=DateTime()))
        for merchant, account, amount, count in db.execute(group_by, {"cutoff": cutoff}):
            kind = account.split(":", 1)[0]
            sums.setdefault(merchant, {})[kind] = int(amount)
            if kind == "merchant_available":
                sums[merchant]["released"] = int(count)
        _floor_writes(db, day, cutoff, sums)
        if engine.dialect.name == "postgresql":  # the entries' balance checks, as at commit
            db.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
        transaction.rollback()


def _floor_writes(
    db: Connection, day: date, cutoff: datetime, sums: dict[str, dict[str, int]]
) -> None:
    currency = settlement_seed.CURRENCY
    now = datetime.now(UTC).replace(tzinfo=None)
    statements, payouts, entries, postings, moves = [], [], [], [], []
    for merchant, by_kind in sums.items():
        net = -by_kind.get("merchant_available", 0)
        if net <= 0:
            continue
        gross = by_kind.get("channel_clearing", 0)
        fees, commission = -by_kind.get("channel_fee", 0), -by_kind.get("platform_commission", 0)
        statement = statement_id(merchant, day, currency)
        payout = payout_id(statement)
        entry = payout_entry_id(payout, "started")
        statements.append(
            {
                "id": statement,
                "merchant_id": merchant,
                "day": day.isoformat(),
                "currency": currency,
                "cutoff": cutoff,
                "gross": gross,
                "fees": fees,
                "commission": commission,
                "refunded": gross - fees - commission - net,
                "payout": net,
                "orders": by_kind.get("released", 0),
                "created_at": now,
            }
        )
        payouts.append(
            {
                "id": payout,
                "statement_id": statement,
                "merchant_id": merchant,
                "amount": net,
                "currency": currency,
                "at": now,
            }
        )
        entries.append({"id": entry, "merchant_id": merchant, "currency": currency, "at": now})
        available = f"merchant_available:{merchant}:{currency}"
        in_transit = f"merchant_in_transit:{merchant}:{currency}"
        postings += [
            {"entry": entry, "account": available, "currency": currency, "amount": net},
            {"entry": entry, "account": in_transit, "currency": currency, "amount": -net},
        ]
        moves.append(
            {
                "available": available,
                "in_transit": in_transit,
                "merchant": merchant,
                "currency": currency,
                "amount": net,
                "at": now,
            }
        )
    for sql, rows in (
        (_STATEMENT, statements),
        (_PAYOUT, payouts),
        (_IN_TRANSIT, moves),
        (_ENTRY, entries),
        (_POSTING, postings),
        (_AVAILABLE, moves),
    ):
        if rows:
            db.execute(text(sql), rows)


_STATEMENT = (
    "INSERT INTO statements (id, merchant_id, day, currency, sequence, cutoff, opening_balance,"
    " gross_amount, channel_fee_amount, commission_amount, refunded_amount, returned_amount,"
    " clawback_amount, payout_amount, closing_balance, order_count, created_at) VALUES (:id,"
    " :merchant_id, :day, :currency, 1, :cutoff, 0, :gross, :fees, :commission, :refunded, 0,"
    " 0, :payout, 0, :orders, :created_at)"
)
_PAYOUT = (
    "INSERT INTO payouts (id, statement_id, merchant_id, amount, currency, status, created_at,"
    " updated_at) VALUES (:id, :statement_id, :merchant_id, :amount, :currency, 'pending', :at,"
    " :at)"
)
_IN_TRANSIT = (
    "INSERT INTO accounts (id, kind, owner, currency, balance, updated_at) VALUES (:in_transit,"
    " 'merchant_in_transit', :merchant, :currency, -:amount, :at)"
)
_ENTRY = (
    "INSERT INTO journal_entries (id, merchant_id, kind, currency, created_at) VALUES (:id,"
    " :merchant_id, 'payout_started', :currency, :at)"
)
_POSTING = (
    "INSERT INTO postings (entry_id, account, currency, amount) VALUES (:entry, :account,"
    " :currency, :amount)"
)
_AVAILABLE = (
    "UPDATE accounts SET balance = balance + :amount, updated_at = :at WHERE id = :available"
)


def main() -> None:
    """`python -m bench.settlement`: the settlement case alone, on each of BENCH_DATABASES at
    BENCH_SETTLEMENT_SCALE (as `make bench` runs it after its rounds), and its table."""
    config = from_env()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    rows: list[Row] = []
    for database in config.databases:
        work = Path("var/bench") / f"settlement-{stamp}" / database
        work.mkdir(parents=True, exist_ok=True)
        rows += settlement_case(database, work, config, _say)[1]
    print(render_table(rows), flush=True)


def _say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


if __name__ == "__main__":
    main()
