"""The matcher: a day's bill lines against our payments and refunds, joined in DuckDB.

Both sides are written to CSV files (the bill streamed line by line; ours, the day's
window streamed from a plain SQL cursor, and what the bill names beyond it looked up in
chunks) and DuckDB joins and anti-joins them column by column; Python never
loops over pairs of rows. What the bill names is looked up among all our records by its
reference, whatever day we recorded it; what we have that the bill should show is taken
from the day's window (`domain.reconciliation.day_window`) by our own clock.

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
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import bindparam, text
from sqlmodel import Session, col, select

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
_ORDERS = {"order_id": "VARCHAR"}
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
    known_orders: frozenset[str]  # the orders named by the bill that we have
    bill_lines: int


def match_bill(session: Session, match: MatchInput) -> Matched:
    """Every difference between the bill and our records, each once."""
    start, end = day_window(match.channel, match.day)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # a worker has no terminal
    try:
        _load(con, "bill", match.bill_csv, BILL_COLUMNS)
        if match.previous_csv is not None:
            _load(con, "previous", match.previous_csv, BILL_COLUMNS)
        else:
            con.execute("CREATE TABLE previous AS SELECT * FROM bill WHERE false")
        # One line per (kind, reference): a repeat is a duplicate_line of its own.
        con.execute(
            "CREATE TABLE b AS SELECT * FROM bill QUALIFY row_number()"
            " OVER (PARTITION BY kind, reference ORDER BY at_utc, channel_id) = 1"
        )
        _load_ours(con, session, match, start, end)
        known = frozenset(r[0] for r in con.execute("SELECT order_id FROM orders").fetchall())
        window = {
            "channel": match.channel,
            "start": _naive(start),
            "end": _naive(end),
            "edge": _naive(start + match.grace),
        }
        found = _duplicates(con) + _payments(con) + _refunds(con) + _sweeps(con)
        found += _missing_there(con, window) + _refunds_missing(con, window)
        lines = con.execute("SELECT count(*) FROM bill").fetchone()
        return Matched(found, known, int(lines[0]) if lines else 0)
    finally:
        con.close()


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _load_ours(
    con: duckdb.DuckDBPyConnection,
    session: Session,
    match: MatchInput,
    start: datetime,
    end: datetime,
) -> None:
    """Our payments, late payments, refunds and orders that the bill names or the day holds.

    The day's window (our paid payments and succeeded refunds, nearly all the bill names) is
    streamed from a plain SQL cursor into the files DuckDB reads; only what the bill names
    beyond it (an unpaid attempt, a refund of another day, an order we never had) is looked
    up, by the bill's orders and references."""
    _load_window(con, session, match, start, end)
    outside_orders = _column(
        con,
        "SELECT DISTINCT b.order_id FROM b WHERE b.kind = 'payment' AND b.order_id <> ''"
        " AND NOT EXISTS (SELECT 1 FROM day_payments d WHERE d.reference = b.reference)",
    )
    outside_refunds = _column(
        con,
        "SELECT b.reference FROM b WHERE b.kind = 'refund'"
        " AND NOT EXISTS (SELECT 1 FROM day_refunds d WHERE d.id = b.reference)",
    )
    unknown_orders = _column(
        con,
        "SELECT DISTINCT b.order_id FROM b WHERE b.order_id <> ''"
        " AND NOT EXISTS (SELECT 1 FROM day_orders d WHERE d.order_id = b.order_id)",
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
    wanted = sorted(set(unknown_orders) | {p.order_id for p in payments.values()})
    for chunk in _chunks(wanted):
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


# The day's window, each row as DuckDB reads it (a first attempt's reference is its
# order id, whatever the channel's payment id: domain.keys.stored_payment_reference).
_DAY_PAYMENTS = (
    "SELECT {reference}, p.order_id, p.status, p.amount, p.currency,"
    " coalesce(p.channel_txn_id, ''), CASE WHEN o.id IS NOT NULL THEN o.channel_fee_amount END,"
    " {paid_at}, p.channel, CASE WHEN o.id IS NULL THEN 0 ELSE 1 END{more}"
    " FROM payments AS p LEFT JOIN orders AS o ON o.id = p.order_id"
    " WHERE p.channel = :channel AND p.status = 'paid'"
    " AND p.amount > 0"  # a zero-payable order never reached the channel
    " AND p.paid_at >= :start AND p.paid_at < :until AND p.attempt {attempts}"
)
_DAY_PAYMENT_COLUMNS = {**_PAYMENTS, "known": "INTEGER"}  # known: we have its order
_DAY_REFUNDS = (
    "SELECT id, order_id, status, amount, currency, {updated_at}, channel, reason,"
    " coalesce(channel_txn_id, '') FROM refunds WHERE channel = :channel"
    " AND status = 'succeeded' AND updated_at >= :start AND updated_at < :until"
)
_DAY_REFUND_COLUMNS = {**_REFUNDS, "reason": "VARCHAR", "channel_txn_id": "VARCHAR"}
_BATCH = 10_000


def _load_window(
    con: duckdb.DuckDBPyConnection,
    session: Session,
    match: MatchInput,
    start: datetime,
    end: datetime,
) -> None:
    """The day's paid payments and succeeded refunds (and the payments' orders), streamed
    from the database cursor into DuckDB's tables day_payments, day_refunds and day_orders:
    Python only passes the rows on (and names a later attempt's reference)."""
    db = session.connection().execution_options(stream_results=True)
    instant = Payment.__table__.c.paid_at.type  # type: ignore[attr-defined]
    binds = (bindparam("start", type_=instant), bindparam("until", type_=instant))
    params = {"channel": match.channel, "start": start, "until": end + match.grace}

    def utc(column: str) -> str:  # SQLite holds naive UTC text, which DuckDB reads as it is
        postgres = db.dialect.name == "postgresql"  # (and would read a zone's offset wrong)
        return f"{column} AT TIME ZONE 'UTC'" if postgres else column

    def rows(query: str) -> Iterator[Sequence[Any]]:
        cursor = db.execute(text(query).bindparams(*binds), params).cursor
        while batch := cursor.fetchmany(_BATCH):
            yield from batch

    def write(path: Path, columns: dict[str, str], query: str) -> None:
        """The query's rows as CSV: PostgreSQL writes them itself (COPY), else Python."""
        if db.dialect.name == "postgresql":
            raw = db.connection.driver_connection  # the session's own, in its transaction
            sql = str(text(query).compile(dialect=db.dialect))
            with path.open("wb") as out, raw.cursor() as cursor:  # type: ignore[union-attr]
                out.write((",".join(columns) + "\n").encode())
                with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
                    for block in copy:
                        out.write(block)
            return
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            writer.writerows(rows(query))

    paid_at = utc("p.paid_at")
    first = match.work / "day_payments.csv"
    write(
        first,
        _DAY_PAYMENT_COLUMNS,
        _DAY_PAYMENTS.format(reference="p.order_id", paid_at=paid_at, more="", attempts="= 1"),
    )
    later = match.work / "day_payments_later.csv"
    with later.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(_DAY_PAYMENT_COLUMNS)
        query = _DAY_PAYMENTS.format(
            reference="''",
            paid_at=paid_at,
            more=", p.attempt, p.channel_payment_id",
            attempts="> 1",
        )
        writer.writerows(
            [stored_payment_reference(row[1], row[10], row[11]), *row[1:10]] for row in rows(query)
        )
    refunds = match.work / "day_refunds.csv"
    write(refunds, _DAY_REFUND_COLUMNS, _DAY_REFUNDS.format(updated_at=utc("updated_at")))
    _load(con, "day_payments", first, _DAY_PAYMENT_COLUMNS)
    con.execute(f"INSERT INTO day_payments SELECT * FROM {_read(later, _DAY_PAYMENT_COLUMNS)}")
    con.execute("CREATE TABLE day_orders AS SELECT DISTINCT order_id FROM day_payments WHERE known")
    _load(con, "day_refunds", refunds, _DAY_REFUND_COLUMNS)


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
        ("more_orders", _ORDERS, ([order_id] for order_id in orders)),
    ):
        path = work / f"{table}.csv"
        _write_rows(path, columns, rows)
        _load(con, table, path, columns)
    # The day's rows and those looked up beyond it, each once.
    con.execute(
        f"CREATE TABLE ours_payments AS SELECT {', '.join(_PAYMENTS)} FROM day_payments UNION ALL"
        " SELECT * FROM more_payments m WHERE NOT EXISTS"
        " (SELECT 1 FROM day_payments d WHERE d.reference = m.reference)"
    )
    con.execute(
        f"CREATE TABLE ours_refunds AS SELECT {', '.join(_REFUNDS)} FROM day_refunds UNION ALL"
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
    con.execute(
        "CREATE TABLE orders AS SELECT order_id FROM day_orders UNION"
        " SELECT order_id FROM more_orders"
    )


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
