"""Reconciliation at scale: a channel-day's bill matched by the product's code, beside a floor.

The day is seeded by `bench.reconciliation_seed` (our rows in the database, the bill as the
channel's adapter hands it to the matcher, differences planted). The product's path is
`db.reconciliation_match.match_bill`, as the run's `match_bill` activity calls it, without
Temporal: it reads our rows from the database and matches them in DuckDB.

The floor is a bare DuckDB join of the same two files: the bill's CSV and our rows
exported to a CSV beforehand (the export not timed), full-outer-joined on (kind,
reference), counting the rows that differ. The goal: the product within twice the floor,
and every planted difference found, nothing else.

Each side runs in a process of its own (spawned), so its peak memory is its own: DuckDB's
memory is native, out of tracemalloc's sight, so the peak is the process's resident
high-water mark (`ru_maxrss`), interpreter and imports included. The two sides take turns,
three times each (`ROUNDS`); the figures are the medians, and each round's are kept.

Each side times its own work and nothing of the fresh process's: the clock starts after
the interpreter's garbage is collected (`_clock`), and the product's after its engine has
connected once and the ORM's mappers are configured, as in the long-running worker (the
first connection initialises SQLAlchemy's dialect: about 50 ms on PostgreSQL; the first
ORM query configures every mapper: 10-20 ms of the match; no run in the worker pays
either).
"""

from __future__ import annotations

import csv
import gc
import multiprocessing
import resource
import statistics
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import Engine, text
from sqlalchemy.orm import configure_mappers
from sqlmodel import Session

from bench.config import BenchConfig
from bench.figures import Goal, Row
from bench.reconciliation_seed import CHANNEL, KINDS, Day, seed
from bench.stand import bench_database
from db.engine import make_engine
from db.migrate import upgrade_to_head
from db.reconciliation_match import BILL_COLUMNS, MatchInput, match_bill, write_bill_csv

GOAL_RATIO = 2.0
ROUNDS = 3  # one measure of a second or less moves by a fifth with the machine's pace
GRACE = timedelta(seconds=30)
_OURS = {
    "kind": "VARCHAR",
    "reference": "VARCHAR",
    "status": "VARCHAR",
    "currency": "VARCHAR",
    "amount": "BIGINT",
    "fee": "BIGINT",
}


@dataclass(frozen=True)
class ReconciliationFigures:
    rows: int  # ours: payments + refunds
    bill_lines: int
    planted: int  # all kinds together
    seed_s: float
    floor_s: float
    floor_peak_mb: float
    run_s: float
    run_peak_mb: float
    found: dict[str, int] = field(default_factory=dict)  # by type
    floor_times: list[float] = field(default_factory=list)  # each round's, interleaved
    run_times: list[float] = field(default_factory=list)
    missed: int = 0  # planted, not found
    extra: int = 0  # found, not planted

    @property
    def ratio(self) -> float:
        return self.run_s / self.floor_s if self.floor_s else 0.0

    @property
    def exact(self) -> bool:
        return self.missed == 0 and self.extra == 0


def measure(
    url: str, rows: int, work: Path, say: Callable[[str], None], rounds: int = ROUNDS
) -> ReconciliationFigures:
    """Seed a fresh database at `url` (at head, empty), then time both sides `rounds` times,
    interleaved: the medians of the times, the highest peaks."""
    day = Day(rows, datetime.now(UTC).date() - timedelta(days=2))
    engine = make_engine(url)
    try:
        began = time.perf_counter()
        seed(engine, day)
        bill = work / "bill.csv"
        lines = write_bill_csv(day.bill(), bill)
        ours = work / "ours.csv"
        _export_ours(engine, ours)
        seed_s = time.perf_counter() - began
    finally:
        engine.dispose()
    say(
        f"  reconciliation: seeded {rows:,} of our rows, a bill of {lines:,} lines,"
        f" {day.planted} differences of each of {len(KINDS)} kinds, in {seed_s:.0f} s"
    )
    floors: list[tuple[float, float]] = []
    runs: list[tuple[float, float]] = []
    found: list[tuple[str, str]] = []
    for round_no in range(1, rounds + 1):  # interleaved: the machine's pace moves both alike
        floor_s, floor_peak, _ = _isolated(_floor, bill, ours)
        floors.append((floor_s, floor_peak))
        match_work = work / f"match-{round_no}"
        match_work.mkdir(exist_ok=True)
        run_s, run_peak, found_now = _isolated(_match, url, day, bill, match_work)
        runs.append((run_s, run_peak))
        if round_no > 1 and sorted(found_now) != sorted(found):
            raise RuntimeError("the product's match found different differences in two rounds")
        found = found_now
        say(
            f"  reconciliation, round {round_no} of {rounds}: a bare DuckDB join of the two"
            f" files {floor_s:.2f} s, the product's match_bill {run_s:.2f} s"
        )
    expected = day.expected()
    return ReconciliationFigures(
        rows=rows,
        bill_lines=lines,
        planted=len(expected),
        seed_s=seed_s,
        floor_s=statistics.median(seconds for seconds, _ in floors),
        floor_peak_mb=max(peak for _, peak in floors),
        run_s=statistics.median(seconds for seconds, _ in runs),
        run_peak_mb=max(peak for _, peak in runs),
        found=dict(sorted(Counter(kind for kind, _ in found).items())),
        missed=len(expected - set(found)),
        extra=len(found) - len(expected & set(found)),
        floor_times=[seconds for seconds, _ in floors],
        run_times=[seconds for seconds, _ in runs],
    )


def reconciliation_case(
    database: str, work: Path, config: BenchConfig, say: Callable[[str], None]
) -> tuple[dict[str, Any], list[Row]]:
    """The case on a fresh database of its own: its figures (JSON) and table rows."""
    with bench_database(database, work, config.postgres_url) as url:
        upgrade_to_head(url)
        return reported(database, measure(url, config.reconciliation_rows, work, say))


def reported(database: str, figures: ReconciliationFigures) -> tuple[dict[str, Any], list[Row]]:
    data = {**asdict(figures), "ratio": figures.ratio, "exact": figures.exact}
    return data, reconciliation_rows(database, figures)


def reconciliation_rows(database: str, figures: ReconciliationFigures) -> list[Row]:
    d = (
        f"[{database}] reconciliation, a bill of {figures.bill_lines:,} lines against"
        f" {figures.rows:,} of our rows: "
    )
    found = sum(figures.found.values())
    return [
        Row(d + "a bare DuckDB join of the two files (median)", figures.floor_s, "s"),
        Row(d + "  its peak memory (process RSS)", figures.floor_peak_mb, "MB"),
        Row(d + "the product's match_bill (median)", figures.run_s, "s"),
        Row(d + "  its peak memory (process RSS)", figures.run_peak_mb, "MB"),
        Row(d + "  ratio", figures.ratio, "x", Goal("<=", GOAL_RATIO)),
        Row(d + f"  differences found (of {figures.planted} planted)", found),
        Row(d + "  planted and not found", figures.missed, "", Goal("==", 0)),
        Row(d + "  found and not planted", figures.extra, "", Goal("==", 0)),
    ] + [Row(d + f"    {kind}", count) for kind, count in figures.found.items()]


def _isolated(work: Callable[..., Any], *args: Any) -> tuple[float, float, Any]:
    """(seconds, peak resident MB, result) of `work(*args)` in a fresh process of its own;
    `work` times itself, returning (seconds, result)."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        (seconds, result), peak_kb = pool.submit(_with_peak, work, *args).result()
    return seconds, peak_kb / 1024, result


def _with_peak(work: Callable[..., Any], *args: Any) -> tuple[Any, int]:
    return work(*args), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _clock() -> float:
    """The time, once the garbage is collected: a fresh process's imports leave a full
    collection due, which the side allocating more Python objects (the match) would
    otherwise pay inside its time (a collection of some 110,000 objects)."""
    gc.collect()
    return time.perf_counter()


def _match(url: str, day: Day, bill: Path, work: Path) -> tuple[float, list[tuple[str, str]]]:
    """The product's matching of the day, timed as the run's activity does it with the
    worker's engine: (seconds, (type, reference) of each difference found)."""
    engine = make_engine(url)
    try:
        with engine.connect():  # the pool's connection, and the dialect initialised
            pass
        configure_mappers()  # done by the worker's first ORM query, not by each run's
        began = _clock()
        with Session(engine) as session:
            match = MatchInput(CHANNEL, day.day, bill, None, GRACE, work)
            matched = match_bill(session, match)
        seconds = time.perf_counter() - began
    finally:
        engine.dispose()
    return seconds, [(found.type.value, found.reference or "") for found in matched.discrepancies]


def _export_ours(engine: Engine, path: Path) -> None:
    """Our payments and refunds as the floor reads them (not timed)."""
    query = (
        "SELECT 'payment', p.order_id, p.status, p.currency, p.amount, o.channel_fee_amount"
        " FROM payments AS p JOIN orders AS o ON o.id = p.order_id"
        " UNION ALL SELECT 'refund', id, status, currency, amount, 0 FROM refunds"
    )
    with engine.connect() as db, path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(_OURS)
        result = db.execution_options(stream_results=True).execute(text(query))
        for rows in result.partitions(10_000):
            writer.writerows(rows)


def _read(path: Path, columns: dict[str, str]) -> str:
    types = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
    return f"read_csv('{path}', header = true, columns = {{{types}}})"


def _floor(bill: Path, ours: Path) -> tuple[float, int]:
    """The bare join, timed: (seconds, the rows of either file that the other lacks or
    differs on)."""
    began = _clock()
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        row = con.execute(
            f"SELECT count(*) FROM {_read(bill, BILL_COLUMNS)} AS b"
            f" FULL OUTER JOIN {_read(ours, _OURS)} AS o"
            " ON o.kind = b.kind AND o.reference = b.reference"
            " WHERE b.reference IS NULL OR o.reference IS NULL OR o.amount <> b.amount"
            " OR o.fee <> b.fee OR o.status NOT IN ('paid', 'succeeded')"
        ).fetchone()
    finally:
        con.close()
    return time.perf_counter() - began, int(row[0]) if row else 0
