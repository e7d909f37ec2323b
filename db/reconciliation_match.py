"""The matcher: a day's bill lines against our payments and refunds, joined in DuckDB.

The bill reaches DuckDB as a CSV file, streamed line by line; ours, the day's window
(`domain.reconciliation.day_window`, by our own clock), as Arrow columns straight from
the database (db.arrow_reads: the first attempts' compared columns and the refunds) and
as CSV for the few later attempts, whose references Python names. DuckDB parses the bill
while the database streams (a thread of its own), then one full outer join of the bill
and the window keeps the few references where the two may differ: a line we lack, a row
the bill lacks, a repeated line, a different amount, currency or fee. Everything after
works on those: what the bill names beyond the window (an unpaid attempt, another day's
refund or payment, an order we never had) is looked up among all our records by its
reference, whatever day we recorded it; the window's own rows among them are read again
in full; and the six matching queries type each difference. Python never loops over
pairs of rows, nor over the rows that agree: of those, only the compared columns
(reference, amount, currency, fee) leave the database.

Our clock is behind the channel's: we record a payment when its notification or our
query reaches us, seconds (rarely minutes) after the channel stamped it. So a payment
we recorded in the first `grace` of the day may be on the previous day's bill; one of
ours unmatched there is looked for in that bill before it counts as missing there.

Fees are compared on payments, against the channel fee we booked at capture (the
order's split); a refund's returned fee is shown on its exception but not compared, as
channels differ in whether they return it.

Sweep lines (the channel's transfers into our bank, where its bill lists them) are
matched per currency against the sweeps we posted for the same channel-day
(`channel_sweeps`, written with each CHANNEL_SWEEP entry): the sum the bill says was
paid over against the sum our bank received. A currency only the bill has is
missing_here (a transfer we have not posted), one only we have is missing_there, and
different sums an amount_mismatch; the exception's reference is `sweep:{currency}` and
its detail names the transfers on each side.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import bindparam, text
from sqlmodel import Session, col, select

from db.arrow_reads import ArrowRead, read_all_into
from db.reconcile import LATE_PAYMENT_REASON
from db.tables import ChannelSweep, Order, Payment, Refund
from db.times import as_utc
from domain.bills import BillLine, BillLineKind
from domain.keys import order_id_of, stored_payment_reference
from domain.reconciliation import Discrepancy, day_window

BILL_COLUMNS = {
    "kind": "VARCHAR",
    "reference": "VARCHAR",
    "channel_id": "VARCHAR",
    "order_id": "VARCHAR",
    "currency": "VARCHAR",
    "amount": "BIGINT",
    "fee": "BIGINT",
    "at_utc": "TIMESTAMP",
}
# The bill as first read: its instants as written (write_bill_csv's ISO text), made
# instants only on the lines kept (`bill`): of a million lines, a tenth of the parse.
_BILL_AS_READ = {**BILL_COLUMNS, "at_utc": "VARCHAR"}
_PAYMENTS = {
    "reference": "VARCHAR",
    "order_id": "VARCHAR",
    "status": "VARCHAR",
    "amount": "BIGINT",
    "currency": "VARCHAR",
    "channel_txn_id": "VARCHAR",
    "fee": "BIGINT",
    "paid_at": "TIMESTAMP",
    "channel": "VARCHAR",
}
_LATE = {"channel_txn_id": "VARCHAR", "amount": "BIGINT", "currency": "VARCHAR"}
_REFUNDS = {
    "id": "VARCHAR",
    "order_id": "VARCHAR",
    "status": "VARCHAR",
    "amount": "BIGINT",
    "currency": "VARCHAR",
    "updated_at": "TIMESTAMP",
    "channel": "VARCHAR",
}
_SWEEPS = {"transfer_id": "VARCHAR", "currency": "VARCHAR", "net": "BIGINT"}
_CHUNK = 500  # ids per IN (...) when reading our records of the bill's references


def _naive_utc(moment: datetime) -> str:
    return as_utc(moment).astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def write_bill_csv(lines: Iterable[BillLine], path: Path) -> int:
    """Stream the bill's lines into the matcher's CSV; the number of lines written."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(BILL_COLUMNS)
        for line in lines:
            # A refund names its payment; either way the order is the reference's.
            payment = line.order_reference if line.kind == BillLineKind.REFUND else line.reference
            order_id = order_id_of(payment) if line.kind != BillLineKind.SWEEP else ""
            writer.writerow(
                [
                    line.kind.value,
                    line.reference,
                    line.channel_id,
                    order_id,
                    line.currency,
                    line.amount,
                    line.fee,
                    _naive_utc(line.at),
                ]
            )
            count += 1
    return count


def _write_rows(path: Path, columns: dict[str, str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)


def _read(path: Path, columns: dict[str, str]) -> str:
    types = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
    return (
        f"read_csv('{path}', header = true, columns = {{{types}}}, quote = '\"', escape = '\"',"
        " nullstr = '')"
    )


def _load(con: duckdb.DuckDBPyConnection, table: str, path: Path, columns: dict[str, str]) -> None:
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM {_read(path, columns)}")


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


@dataclass(frozen=True)
class MatchInput:
    channel: str
    day: date
    bill_csv: Path  # write_bill_csv's file of the day's bill
    previous_csv: Path | None  # the previous day's, when it could be had
    grace: timedelta
    work: Path  # a directory for our side's files


@dataclass(frozen=True)
class Matched:
    discrepancies: list[Discrepancy]
    known_orders: frozenset[str]  # the orders the differences name that we have
    bill_lines: int


def match_bill(session: Session, match: MatchInput) -> Matched:
    """Every difference between the bill and our records, each once."""
    start, end = day_window(match.channel, match.day)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # a worker has no terminal
    try:
        parser = con.cursor()  # DuckDB's own connection for the other thread
        # The database's read is the longer: DuckDB's parse of the bill takes one core
        # beside it, not both, and leaves the other to the read.
        con.execute("SET threads = 1")
        with parser, ThreadPoolExecutor(max_workers=1) as pool:
            parsed = pool.submit(_load_bill, parser, match.bill_csv)
            window = _Window(session, match, start, end)
            window.export(con)
            parsed.result()
        con.execute("RESET threads")
        window.load(con)
        _keep_odd(con)
        window.load_odd(con)
        _load_beyond(con, session, match)
        _load_previous(con, match.previous_csv)
        bounds = {
            "channel": match.channel,
            "start": _naive(start),
            "end": _naive(end),
            "edge": _naive(start + match.grace),
        }
        found = _duplicates(con) + _payments(con) + _refunds(con) + _sweeps(con)
        found += _missing_there(con, bounds) + _refunds_missing(con, bounds)
        lines = con.execute("SELECT count(*) FROM bill_all").fetchone()
        known = _known_orders(session, found)
        return Matched(found, known, int(lines[0]) if lines else 0)
    finally:
        con.close()


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


# The day's window. A first attempt's reference is its order id whatever the channel's
# payment id (domain.keys.stored_payment_reference); a later one's is named in Python.
_WINDOW = (
    " FROM payments AS p WHERE p.channel = :channel AND p.status = 'paid'"
    " AND p.amount > 0"  # a zero-payable order never reached the channel
    " AND p.paid_at >= :start AND p.paid_at < :until"
)
# What the one pass compares, of every attempt of the day: one read of the range, which
# tells the few later attempts (attempt > 1, read again by key) from the first ones. The
# fee is the paid attempt's copy of its order's (kept by the database: db.tables), so the
# read is a range of ix_payments_paid_day alone, not a join with a million orders.
_DAY_COMPARED = "SELECT p.order_id, p.attempt, p.amount, p.currency, p.channel_fee_amount" + _WINDOW
_COMPARED = {
    "order_id": "VARCHAR",
    "attempt": "INTEGER",
    "amount": "BIGINT",
    "currency": "VARCHAR",
    "fee": "BIGINT",
}
# Each row in full, as the matching queries read it, by its key: of the window's later
# attempts, and of first attempts the one pass kept (the window's filter alone would have
# SQLite scan the channel's payments for each chunk of them).
_PAYMENT_ROWS = (
    "SELECT {reference}, p.order_id, p.status, p.amount, p.currency,"
    " coalesce(p.channel_txn_id, ''), p.channel_fee_amount, {paid_at}, p.channel{more}"
)
# The window's later attempts of the orders named: without the channel, which the read
# of the window has checked, so that SQLite finds them by key, not by the range.
_LATER_PAYMENTS = _PAYMENT_ROWS + (
    " FROM payments AS p WHERE p.order_id IN :ids AND p.attempt > 1 AND p.status = 'paid'"
    " AND p.amount > 0 AND p.paid_at >= :start AND p.paid_at < :until"
)
_FIRST_PAYMENTS = _PAYMENT_ROWS + " FROM payments AS p WHERE p.order_id IN :ids AND p.attempt = 1"
_DAY_REFUNDS = (
    "SELECT id, order_id, status, amount, currency, {updated_at}, channel, reason,"
    " coalesce(channel_txn_id, '') FROM refunds WHERE channel = :channel"
    " AND status = 'succeeded' AND updated_at >= :start AND updated_at < :until"
)
_DAY_REFUND_COLUMNS = {**_REFUNDS, "reason": "VARCHAR", "channel_txn_id": "VARCHAR"}
_BATCH = 10_000


class _Window:
    """The day's paid payments and succeeded refunds, from the database into DuckDB.

    Of every attempt of the day only the compared columns (day_compared: nearly all are
    first attempts, whose reference is their order id); of later attempts and of refunds,
    which are few, every column (day_later, day_refunds).
    The window's payments that the one pass keeps are read again in full afterwards
    (day_payments): the rows that agree with the bill never leave the database whole.
    Python only passes the rows on, and names a later attempt's reference."""

    def __init__(self, session: Session, match: MatchInput, start: datetime, end: datetime):
        # Not streamed: a PostgreSQL server-side cursor would have one row fetched
        # before we read its DBAPI cursor. The big reads are db.arrow_reads'; SQLite's
        # cursor steps as it is read.
        self.db = session.connection()
        self.postgres = self.db.dialect.name == "postgresql"
        self.work = match.work
        self.params: dict[str, Any] = {
            "channel": match.channel,
            "start": start,
            "until": end + match.grace,
        }

    def utc(self, column: str) -> str:
        """SQLite holds naive UTC text, which DuckDB reads as it is (and would read a
        PostgreSQL zone's offset wrong)."""
        return f"{column} AT TIME ZONE 'UTC'" if self.postgres else column

    def export(self, con: duckdb.DuckDBPyConnection) -> None:
        """The window's rows: the compared columns of every attempt and the refunds
        straight into DuckDB, in columns (db.arrow_reads); the later attempts, read again
        by key, into the file `load` reads, each named in Python."""
        refunds = _DAY_REFUNDS.format(updated_at=self.utc("updated_at"))
        reads = [
            ArrowRead("day_compared", _DAY_COMPARED, _COMPARED),
            ArrowRead("day_refunds", refunds, _DAY_REFUND_COLUMNS),
        ]
        read_all_into(con, self.db, self.params, reads)
        later = _LATER_PAYMENTS.format(
            reference="''", paid_at=self.utc("p.paid_at"), more=", p.attempt, p.channel_payment_id"
        )
        orders = _column(
            con, "SELECT DISTINCT order_id FROM day_compared WHERE attempt > 1 ORDER BY 1"
        )
        rows = (
            [stored_payment_reference(r[1], r[9], r[10]), *r[1:9]]
            for chunk in _chunks(orders)
            for r in self._rows(later, chunk)
        )
        _write_rows(self.work / "day_later.csv", _PAYMENTS, rows)

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        _load(con, "day_later", self.work / "day_later.csv", _PAYMENTS)

    def load_odd(self, con: duckdb.DuckDBPyConnection) -> None:
        """The window's payments the one pass kept (odd), every column: day_payments."""
        wanted = _column(
            con,
            "SELECT d.order_id FROM odd AS o JOIN day_compared AS d ON o.kind = 'payment'"
            " AND d.attempt = 1 AND d.order_id = o.reference ORDER BY d.order_id",
        )
        query = _FIRST_PAYMENTS.format(
            reference="p.order_id", paid_at=self.utc("p.paid_at"), more=""
        )
        rows = (row for chunk in _chunks(wanted) for row in self._rows(query, chunk))
        path = self.work / "day_payments.csv"
        _write_rows(path, _PAYMENTS, rows)
        _load(con, "day_payments", path, _PAYMENTS)
        con.execute(
            "INSERT INTO day_payments SELECT d.* FROM day_later AS d"
            " SEMI JOIN odd AS o ON o.kind = 'payment' AND o.reference = d.reference"
        )

    def _rows(self, query: str, ids: Sequence[str]) -> Iterator[Sequence[Any]]:
        for batch in self._batches(query, ids):
            yield from batch

    def _batches(self, query: str, ids: Sequence[str]) -> Iterator[Sequence[Any]]:
        """The rows of `query` keyed by `ids` (and the window's bounds, if it names them),
        a batch at a time."""
        keyed = text(query).bindparams(bindparam("ids", expanding=True))
        if ":start" in query:
            instant = Payment.__table__.c.paid_at.type  # type: ignore[attr-defined]
            keyed = keyed.bindparams(
                bindparam("start", type_=instant), bindparam("until", type_=instant)
            )
        cursor = self.db.execute(keyed, {**self.params, "ids": list(ids)}).cursor
        while batch := cursor.fetchmany(_BATCH):
            yield batch


def _load_bill(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The bill (bill_all), and the hashes of the (kind, reference) it lists more than
    once (bill_repeated). A hash of one 64-bit number is counted for a third of the time
    two strings take (0.06 against 0.14 s of one core for the bench's million lines); two
    references that share a hash are only looked at too, never missed."""
    _load(con, "bill_all", path, _BILL_AS_READ)
    con.execute(
        "CREATE TABLE bill_repeated AS SELECT hash(kind, reference) AS h FROM bill_all"
        " GROUP BY h HAVING count(*) > 1"
    )


def _keep_odd(con: duckdb.DuckDBPyConnection) -> None:
    """The one pass over the whole day: the bill's lines full-outer-joined with the window,
    keeping in `odd` each reference where the two may differ (a line we lack, a row the
    bill lacks, a repeated line, a different amount, currency or fee), whether we have it
    in the window (ours). `bill` is every line of them, `b` one line of each.

    What the matching queries find is among these. A reference left out has one line and a
    row in the window, a paid payment or succeeded refund, of the same amount, currency and
    fee: no case of _payments or _refunds types it, it is no duplicate, and it is billed,
    so neither missing_there nor refund_missing. Those two look up in `bill` our rows
    the bill lacks, which are kept, and rows looked up beyond the window, whose lines (the
    window lacks them) are kept too. A reference kept that agrees after all (one whose hash
    another repeated reference shares) is typed by none of them."""
    con.execute(
        """
        CREATE TABLE odd AS
        WITH window_rows AS (
          SELECT 'payment' AS kind, order_id AS reference, amount, currency, fee
          FROM day_compared WHERE attempt = 1
          UNION ALL SELECT 'payment', reference, amount, currency, fee FROM day_later
          UNION ALL SELECT 'refund', id, amount, currency, NULL FROM day_refunds
        )
        SELECT DISTINCT coalesce(l.kind, w.kind) AS kind,
          coalesce(l.reference, w.reference) AS reference, w.reference IS NOT NULL AS ours
        FROM bill_all AS l FULL OUTER JOIN window_rows AS w
          ON w.kind = l.kind AND w.reference = l.reference
        WHERE l.reference IS NULL OR w.reference IS NULL
          OR l.amount <> w.amount OR l.currency <> w.currency
          OR (w.kind = 'payment' AND w.fee <> l.fee)
          OR hash(l.kind, l.reference) IN (SELECT h FROM bill_repeated)
        """
    )
    con.execute(
        "CREATE TABLE bill AS SELECT * REPLACE (CAST(at_utc AS TIMESTAMP) AS at_utc)"
        " FROM bill_all SEMI JOIN odd USING (kind, reference)"
    )
    # One line per (kind, reference): a repeat is a duplicate_line of its own.
    con.execute(
        "CREATE TABLE b AS SELECT * FROM bill QUALIFY row_number()"
        " OVER (PARTITION BY kind, reference ORDER BY at_utc, channel_id) = 1"
    )


def _load_beyond(con: duckdb.DuckDBPyConnection, session: Session, match: MatchInput) -> None:
    """What the bill names beyond the window (an unpaid attempt, a refund or payment of
    another day, an order we never had), looked up by its orders and references, and
    our side of the odd references: ours_payments, ours_refunds, ours_late, ours_sweeps."""
    outside_orders = _column(
        con,
        "SELECT DISTINCT b.order_id FROM b JOIN odd AS o USING (kind, reference)"
        " WHERE b.kind = 'payment' AND b.order_id <> '' AND NOT o.ours ORDER BY 1",
    )
    outside_refunds = _column(
        con,
        "SELECT b.reference FROM b JOIN odd AS o USING (kind, reference)"
        " WHERE b.kind = 'refund' AND NOT o.ours ORDER BY 1",
    )
    payments: dict[tuple[str, int], Payment] = {}
    refunds: dict[str, Refund] = {}
    orders: dict[str, Order] = {}
    for chunk in _chunks(outside_orders):
        for row in session.exec(select(Payment).where(col(Payment.order_id).in_(chunk))):
            payments[(row.order_id, row.attempt)] = row
        for refund in session.exec(select(Refund).where(col(Refund.order_id).in_(chunk))):
            refunds[refund.id] = refund
    for chunk in _chunks(outside_refunds):
        for refund in session.exec(select(Refund).where(col(Refund.id).in_(chunk))):
            refunds[refund.id] = refund
    for chunk in _chunks(sorted({p.order_id for p in payments.values()})):
        for order in session.exec(select(Order).where(col(Order.id).in_(chunk))):
            orders[order.id] = order
    _write_ours(con, match.work, payments, refunds, orders)
    sweeps = session.exec(
        select(ChannelSweep).where(
            ChannelSweep.channel == match.channel, ChannelSweep.day == match.day.isoformat()
        )
    )
    path = match.work / "ours_sweeps.csv"
    _write_rows(path, _SWEEPS, ([s.transfer_id, s.currency, s.net] for s in sweeps))
    _load(con, "ours_sweeps", path, _SWEEPS)


def _column(con: duckdb.DuckDBPyConnection, query: str) -> list[str]:
    return [r[0] for r in con.execute(query).fetchall()]


def _write_ours(
    con: duckdb.DuckDBPyConnection,
    work: Path,
    payments: dict[tuple[str, int], Payment],
    refunds: dict[str, Refund],
    orders: dict[str, Order],
) -> None:
    def fee(row: Payment) -> int | None:
        order = orders.get(row.order_id)
        return order.channel_fee_amount if order is not None and row.status == "paid" else None

    payment_rows = (
        [
            stored_payment_reference(p.order_id, p.attempt, p.channel_payment_id),
            p.order_id,
            p.status,
            p.amount,
            p.currency,
            p.channel_txn_id or "",
            fee(p),
            _naive_utc(p.paid_at) if p.paid_at else "",
            p.channel,
        ]
        for p in payments.values()
    )
    late_rows = (
        [r.channel_txn_id, r.amount, r.currency]
        for r in refunds.values()
        if r.reason == LATE_PAYMENT_REASON and r.channel_txn_id
    )
    refund_rows = (
        [r.id, r.order_id, r.status, r.amount, r.currency, _naive_utc(r.updated_at), r.channel]
        for r in refunds.values()
    )
    for table, columns, rows in (
        ("more_payments", _PAYMENTS, payment_rows),
        ("more_late", _LATE, late_rows),
        ("more_refunds", _REFUNDS, refund_rows),
    ):
        path = work / f"{table}.csv"
        _write_rows(path, columns, rows)
        _load(con, table, path, columns)
    # The window's odd rows and those looked up beyond it, each once.
    con.execute(
        "CREATE TABLE ours_payments AS SELECT * FROM day_payments UNION ALL"
        " SELECT m.* FROM more_payments AS m WHERE m.reference NOT IN ("
        " SELECT d.order_id FROM day_compared AS d SEMI JOIN more_payments AS x"
        " ON x.reference = d.order_id WHERE d.attempt = 1"
        " UNION ALL SELECT reference FROM day_later)"
    )
    con.execute(
        f"CREATE TABLE ours_refunds AS SELECT {', '.join(_REFUNDS)} FROM day_refunds AS d"
        " SEMI JOIN odd AS o ON o.kind = 'refund' AND o.reference = d.id UNION ALL"
        " SELECT * FROM more_refunds m WHERE NOT EXISTS"
        " (SELECT 1 FROM day_refunds d WHERE d.id = m.id)"
    )
    con.execute(
        "CREATE TABLE ours_late AS SELECT * FROM more_late UNION ALL"
        " SELECT d.channel_txn_id, d.amount, d.currency FROM day_refunds d"
        " WHERE d.reason = $late AND d.channel_txn_id <> '' AND NOT EXISTS"
        " (SELECT 1 FROM more_refunds m WHERE m.id = d.id)",
        {"late": LATE_PAYMENT_REASON},
    )


def _load_previous(con: duckdb.DuckDBPyConnection, previous_csv: Path | None) -> None:
    """The previous day's lines of our odd rows, where a row recorded just after midnight
    may have been billed (previous): only those are kept of that bill."""
    if previous_csv is None:
        con.execute("CREATE TABLE previous (kind VARCHAR, reference VARCHAR)")
        return
    con.execute(
        "CREATE TABLE previous AS SELECT p.kind, p.reference"
        f" FROM {_read(previous_csv, BILL_COLUMNS)} AS p SEMI JOIN ("
        " SELECT 'payment' AS kind, reference FROM ours_payments"
        " UNION ALL SELECT 'refund', id FROM ours_refunds) AS o USING (kind, reference)"
    )


def _known_orders(session: Session, found: list[Discrepancy]) -> frozenset[str]:
    """The orders the differences name that we have (the worker acts only on those)."""
    named = sorted({d.order_id for d in found if d.order_id})
    known: set[str] = set()
    for chunk in _chunks(named):
        known.update(session.exec(select(Order.id).where(col(Order.id).in_(chunk))))
    return frozenset(known)


def _discrepancies(con: duckdb.DuckDBPyConnection, query: str, **params: Any) -> list[Discrepancy]:
    """Rows of `query`, whose columns are named as Discrepancy's fields, as Discrepancies."""
    result = con.execute(query, params)
    names = [d[0] for d in result.description]
    found = []
    for row in result.fetchall():
        values = {k: v for k, v in zip(names, row, strict=True) if v is not None}
        found.append(Discrepancy.model_validate(values))
    return found


def _duplicates(con: duckdb.DuckDBPyConnection) -> list[Discrepancy]:
    return _discrepancies(
        con,
        "SELECT 'duplicate_line' AS type, kind AS line_kind, reference,"
        " nullif(any_value(order_id), '') AS order_id, any_value(currency) AS currency,"
        " min(amount) AS theirs_amount, min(channel_id) AS channel_txn_id,"
        " 'listed ' || count(*) || ' times, ' || sum(amount) || ' in all' AS detail"
        " FROM bill GROUP BY kind, reference HAVING count(*) > 1",
    )


def _payments(con: duckdb.DuckDBPyConnection) -> list[Discrepancy]:
    """The bill's payments against ours (or a late payment we refund, known by its txn)."""
    return _discrepancies(
        con,
        """
        SELECT * FROM (
          SELECT CASE
              WHEN o.reference IS NULL AND l.channel_txn_id IS NULL THEN 'missing_here'
              WHEN l.channel_txn_id IS NOT NULL AND coalesce(o.status, '') <> 'paid' THEN
                CASE WHEN l.amount <> b.amount OR l.currency <> b.currency
                     THEN 'amount_mismatch' END
              WHEN o.status <> 'paid' THEN 'status_mismatch'
              WHEN o.amount <> b.amount OR o.currency <> b.currency THEN 'amount_mismatch'
              WHEN o.fee IS NOT NULL AND o.fee <> b.fee THEN 'fee_mismatch'
            END AS type,
            'payment' AS line_kind, b.reference, nullif(b.order_id, '') AS order_id,
            b.currency, coalesce(o.amount, l.amount) AS ours_amount, b.amount AS theirs_amount,
            o.fee AS ours_fee, b.fee AS theirs_fee,
            CASE WHEN l.channel_txn_id IS NOT NULL AND coalesce(o.status, '') <> 'paid'
                 THEN 'late_payment' ELSE o.status END AS ours_status,
            b.channel_id AS channel_txn_id,
            'the channel took ' || b.amount || ' ' || b.currency || ' at ' || b.at_utc AS detail
          FROM b
          LEFT JOIN ours_payments o ON o.reference = b.reference
          LEFT JOIN ours_late l ON l.channel_txn_id = b.channel_id
          WHERE b.kind = 'payment'
        ) WHERE type IS NOT NULL
        """,
    )


def _refunds(con: duckdb.DuckDBPyConnection) -> list[Discrepancy]:
    return _discrepancies(
        con,
        """
        SELECT * FROM (
          SELECT CASE
              WHEN r.id IS NULL THEN 'missing_here'
              WHEN r.status <> 'succeeded' THEN 'status_mismatch'
              WHEN r.amount <> b.amount OR r.currency <> b.currency THEN 'amount_mismatch'
            END AS type,
            'refund' AS line_kind, b.reference, coalesce(r.order_id, nullif(b.order_id, ''))
            AS order_id, b.currency, r.amount AS ours_amount, b.amount AS theirs_amount,
            b.fee AS theirs_fee, r.status AS ours_status, b.channel_id AS channel_txn_id,
            'the channel paid back ' || b.amount || ' ' || b.currency || ' at ' || b.at_utc
            AS detail
          FROM b LEFT JOIN ours_refunds r ON r.id = b.reference
          WHERE b.kind = 'refund'
        ) WHERE type IS NOT NULL
        """,
    )


def _missing_there(con: duckdb.DuckDBPyConnection, window: dict[str, Any]) -> list[Discrepancy]:
    """Our paid payments of the day the bill does not show (nor, near midnight, the last)."""
    return _discrepancies(
        con,
        """
        SELECT 'missing_there' AS type, 'payment' AS line_kind, o.reference, o.order_id,
          o.currency, o.amount AS ours_amount, o.fee AS ours_fee, o.status AS ours_status,
          nullif(o.channel_txn_id, '') AS channel_txn_id,
          'we recorded it paid at ' || o.paid_at AS detail
        FROM ours_payments o
        WHERE o.channel = $channel AND o.status = 'paid'
          AND o.paid_at >= $start AND o.paid_at < $end
          AND NOT EXISTS (SELECT 1 FROM bill x WHERE x.kind = 'payment'
                          AND x.reference = o.reference)
          AND NOT (o.paid_at < $edge AND EXISTS (SELECT 1 FROM previous p
                   WHERE p.kind = 'payment' AND p.reference = o.reference))
        """,
        **window,
    )


def _refunds_missing(con: duckdb.DuckDBPyConnection, window: dict[str, Any]) -> list[Discrepancy]:
    """Our refunds that succeeded in the day that the bill does not show."""
    return _discrepancies(
        con,
        """
        SELECT 'refund_missing' AS type, 'refund' AS line_kind, r.id AS reference, r.order_id,
          r.currency, r.amount AS ours_amount, r.status AS ours_status,
          'we recorded it succeeded at ' || r.updated_at AS detail
        FROM ours_refunds r
        WHERE r.channel = $channel AND r.status = 'succeeded'
          AND r.updated_at >= $start AND r.updated_at < $end
          AND NOT EXISTS (SELECT 1 FROM bill x WHERE x.kind = 'refund' AND x.reference = r.id)
          AND NOT (r.updated_at < $edge AND EXISTS (SELECT 1 FROM previous p
                   WHERE p.kind = 'refund' AND p.reference = r.id))
        """,
        **window,
    )


def _sweeps(con: duckdb.DuckDBPyConnection) -> list[Discrepancy]:
    """The bill's sweeps against ours of the channel-day, summed per currency."""
    return _discrepancies(
        con,
        """
        WITH theirs AS (
          SELECT currency, sum(amount) AS amount,
            string_agg(reference, ' ' ORDER BY reference) AS transfers
          FROM b WHERE kind = 'sweep' GROUP BY currency
        ), ours AS (
          SELECT currency, sum(net) AS amount,
            string_agg(transfer_id, ' ' ORDER BY transfer_id) AS transfers
          FROM ours_sweeps GROUP BY currency HAVING sum(net) <> 0
        )
        SELECT * FROM (
          SELECT CASE
              WHEN o.currency IS NULL THEN 'missing_here'
              WHEN t.currency IS NULL THEN 'missing_there'
              WHEN o.amount <> t.amount THEN 'amount_mismatch'
            END AS type,
            'sweep' AS line_kind, 'sweep:' || coalesce(t.currency, o.currency) AS reference,
            coalesce(t.currency, o.currency) AS currency,
            CASE WHEN o.amount >= 0 THEN o.amount END AS ours_amount,
            t.amount AS theirs_amount,
            'the channel says it paid ' || coalesce(t.amount::VARCHAR, 'nothing')
            || coalesce(' (' || t.transfers || ')', '') || ', our bank received '
            || coalesce(o.amount::VARCHAR, 'nothing') || coalesce(' (' || o.transfers || ')', '')
            AS detail
          FROM theirs t FULL OUTER JOIN ours o ON o.currency = t.currency
        ) WHERE type IS NOT NULL
        """,
    )
