"""Reconciliation activities: fetch the day's bill, match it, record, act, close the run.

    start_run -> download_bill (retried while the channel has not published it)
    -> match_bill (DuckDB; records every exception) -> resolve_automatically per
    exception the worker may settle -> finish_run

A bill comes from a `BillSource` per channel (the channel adapters' bill clients, wired
in worker.py). The downloaded bill is normalised into the matcher's CSV under the
worker's work directory; `match_bill` fetches it again if this worker lacks the file.
A bill that stays corrupt fails its download for good after `corrupt_attempts`.
Counts go to `metrics.reconciliation`, once per exception newly recorded or closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlmodel import select
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import CHANNEL_UNAVAILABLE, retryable_error
from channels.base import ChannelAdapter, NotificationKind, PaymentStatus, RefundStatus
from channels.errors import ChannelRejected, ChannelUnavailable, PaymentNotFound
from db.engine import SessionFactory, read_one_snapshot
from db.reconciliation import (
    Recorded,
    close_automatically,
    finish_run,
    record_exceptions,
    start_run,
)
from db.reconciliation_match import MatchInput, match_bill, write_bill_csv
from db.tables import Payment, ReconciliationException, Refund
from domain.bills import BillCorrupt, BillLine, BillLineKind, BillNotReady, BillSummary
from domain.keys import (
    late_payment_workflow_id,
    order_workflow_id,
    refund_workflow_id,
    split_payment_reference,
    stored_payment_reference,
)
from domain.reconciliation import (
    AutoAction,
    AutoOutcome,
    BillFetched,
    BillProblem,
    ChannelDay,
    Discrepancy,
    ExceptionStatus,
    MatchOutcome,
    ReconciliationInput,
    RunFinish,
    RunResult,
)
from domain.refunds import RefundNotice
from domain.saga import LatePayment, PaymentSignal
from metrics.reconciliation import ReconciliationMetrics

BILL_NOT_READY = "BillNotReady"
BILL_CORRUPT = "BillCorrupt"


class BillSource(Protocol):
    """A channel's bills (channels/bills.py `BillClient` has this shape)."""

    @property
    def channel(self) -> str: ...

    async def download(self, day: date, directory: Path) -> Path: ...
    def lines(self, path: Path) -> Iterator[BillLine]: ...
    def summary(self, path: Path) -> BillSummary: ...


BillSources = Callable[[str], BillSource]  # channel name -> its bill source


@dataclass(frozen=True)
class ReconciliationParts:
    """What the activities work with besides the database."""

    bill_sources: BillSources
    channels: Mapping[str, ChannelAdapter]
    temporal: Client
    task_queue: str
    work_dir: Path
    grace: timedelta  # how far our clock may lag the channel's (db.reconciliation_match)


def _now() -> datetime:
    return datetime.now(UTC)


class ReconciliationRecords:
    def __init__(
        self,
        sessions: SessionFactory,
        parts: ReconciliationParts,
        metrics: ReconciliationMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._parts = parts
        self._metrics = metrics if metrics is not None else ReconciliationMetrics()

    @activity.defn
    async def start_reconciliation(self, channel_day: ChannelDay) -> None:
        await asyncio.to_thread(self._write, start_run, channel_day.channel, channel_day.day)

    @activity.defn
    async def download_bill(self, run: ReconciliationInput) -> BillFetched:
        """The day's bill, verified against its own summary and normalised for the matcher.

        Not published yet: retried on the workflow's schedule. Corrupt: retried too (a
        download may have been cut), but for good after `corrupt_attempts`.
        """
        try:
            path, lines = await self._fetch(run.channel, run.day, "bill")
        except BillNotReady as error:
            raise ApplicationError(str(error) or "not published yet", type=BILL_NOT_READY) from None
        except BillCorrupt as error:
            last = activity.info().attempt >= run.wait.corrupt_attempts
            message = str(error) or "the bill does not verify"
            raise ApplicationError(message, type=BILL_CORRUPT, non_retryable=last) from None
        return BillFetched(path=str(path), lines=lines)

    @activity.defn
    async def match_bill(self, run: ReconciliationInput) -> MatchOutcome:
        """Match the bill against our records and record every exception, once."""
        directory = self._directory(run.channel, run.day)
        bill = directory / "bill.csv"
        if not bill.exists():  # another worker downloaded it
            bill, _ = await self._fetch(run.channel, run.day, "bill")
        previous: Path | None
        try:
            previous, _ = await self._fetch(run.channel, run.day - timedelta(days=1), "previous")
        except (BillNotReady, BillCorrupt):
            previous = None  # its boundary payments then count as missing here
        # The matcher's own files (a million rows of ours) in a directory of this call's,
        # gone after it: a retry overlapping an attempt never truncates what it reads.
        with tempfile.TemporaryDirectory(dir=directory, ignore_cleanup_errors=True) as own:
            match = MatchInput(run.channel, run.day, bill, previous, self._parts.grace, Path(own))
            return await asyncio.to_thread(self._match, match)

    @activity.defn
    async def record_bill_problem(self, problem: BillProblem) -> None:
        found = [Discrepancy(type=problem.type, detail=problem.detail)]
        recorded = await asyncio.to_thread(self._record, problem.channel, problem.day, found)
        self._metrics.exceptions_found(problem.channel, recorded.new_types)

    @activity.defn
    async def resolve_automatically(self, exception_id: str) -> AutoOutcome:
        """Ask the channel, then act on its answer; the exception stays open when the
        answer settles nothing (the channel does not confirm the money moved)."""
        row = await asyncio.to_thread(self._exception, exception_id)
        if row is None or row.status != ExceptionStatus.OPEN or row.auto_action is None:
            return AutoOutcome(exception_id=exception_id, resolved=False, note="nothing to do")
        with _channel_errors():
            if row.auto_action == AutoAction.DELIVER_PAYMENT:
                note = await self._deliver_payment(row)
            else:
                note = await self._refresh_refund(row)
        if note is None:
            return AutoOutcome(exception_id=exception_id, resolved=False, note="left open")
        closed = await asyncio.to_thread(self._write, close_automatically, exception_id, note)
        if closed:
            self._metrics.exception_auto_resolved(row.channel, row.type)
        return AutoOutcome(exception_id=exception_id, resolved=True, note=note)

    @activity.defn
    async def finish_reconciliation(self, fetched: RunFinish) -> RunResult:
        result = await asyncio.to_thread(self._finish, fetched)
        self._metrics.run_finished(result)
        return result

    # -- helpers -------------------------------------------------------------------

    def _directory(self, channel: str, day: date) -> Path:
        directory = self._parts.work_dir / channel / day.isoformat()
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    async def _fetch(self, channel: str, day: date, name: str) -> tuple[Path, int]:
        """Download the bill, check it against its summary, write the matcher's CSV.

        Each download has a directory of its own and the CSV takes its name only when
        whole (os.replace): two runs of one channel-day on this host (an operator's and
        the schedule's, or workers sharing the directory) never read each other's half."""
        source = self._parts.bill_sources(channel)
        directory = self._directory(channel, day)
        target = directory / f"{name}.csv"
        with tempfile.TemporaryDirectory(dir=directory) as own:
            downloaded = await source.download(day, Path(own))
            written = Path(own) / target.name
            lines = await asyncio.to_thread(_normalise, source, downloaded, written)
            os.replace(written, target)
        return target, lines

    def _match(self, match: MatchInput) -> MatchOutcome:
        with self._sessions() as session:
            read_one_snapshot(session)  # the bulk read and the re-reads by key agree
            matched = match_bill(session, match)
        counts: dict[str, int] = {}
        for found in matched.discrepancies:
            counts[found.type.value] = counts.get(found.type.value, 0) + 1
        with self._sessions() as session, session.begin():
            recorded = record_exceptions(
                session,
                match.channel,
                match.day,
                matched.discrepancies,
                matched.known_orders,
                _now(),
                complete=True,
            )
        self._metrics.exceptions_found(match.channel, recorded.new_types)
        for closed in recorded.closed_types:
            self._metrics.exception_auto_resolved(match.channel, closed)
        return MatchOutcome(counts=counts, auto=recorded.automatic, bill_lines=matched.bill_lines)

    def _record(self, channel: str, day: date, found: list[Discrepancy]) -> Recorded:
        with self._sessions() as session, session.begin():
            return record_exceptions(session, channel, day, found, frozenset(), _now())

    def _finish(self, fetched: RunFinish) -> RunResult:
        with self._sessions() as session, session.begin():
            return finish_run(session, fetched.channel, fetched.day, fetched.bill_lines, _now())

    def _write(self, write: Callable[..., object], *args: object) -> object:
        with self._sessions() as session, session.begin():
            return write(session, *args, _now())

    def _exception(self, exception_id: str) -> ReconciliationException | None:
        with self._sessions() as session:
            row = session.get(ReconciliationException, exception_id)
            if row is not None:
                session.expunge(row)
            return row

    async def _deliver_payment(self, row: ReconciliationException) -> str | None:
        """A payment the channel took and we missed: to its saga, or refunded if it ended."""
        state = await self._parts.channels[row.channel].query_payment(row.reference)
        if state.status != PaymentStatus.PAID or not state.channel_txn_id:
            return None
        order_id, attempt = split_payment_reference(row.reference)
        signal = PaymentSignal(
            source=f"reconciliation:{row.id}",
            kind=NotificationKind.PAYMENT_SUCCEEDED.value,
            channel_txn_id=state.channel_txn_id,
            amount=state.amount,
            currency=state.currency,
            merchant_id=state.merchant_id,
            attempt=attempt,
        )
        handle = self._parts.temporal.get_workflow_handle(order_workflow_id(order_id))
        try:
            await handle.signal("payment_notification", signal)
            return (
                f"the channel confirmed payment {state.channel_txn_id}: given to the order's saga"
            )
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        late = LatePayment(
            order_id=order_id,
            channel=row.channel,
            channel_txn_id=state.channel_txn_id,
            amount=state.amount,
            currency=state.currency,
            payment_reference=row.reference if attempt > 1 else None,
        )
        # As the API does for a late notification: one refund per channel transaction.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._parts.temporal.start_workflow(
                "LatePaymentRefundWorkflow",
                late,
                id=late_payment_workflow_id(row.channel, state.channel_txn_id),
                task_queue=self._parts.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        return f"the order had ended: late payment {state.channel_txn_id} is refunded"

    async def _refresh_refund(self, row: ReconciliationException) -> str | None:
        """A refund we think pending: the channel's answer goes to the refund's workflow."""
        refund = await asyncio.to_thread(self._refund, row.reference)
        if refund is None:
            return None
        channel = self._parts.channels[row.channel]
        state = await channel.query_refund(refund.id, refund.payment_reference)
        if state.status == RefundStatus.PENDING:
            return None
        if refund.requested:  # its RefundWorkflow takes it as it takes a notification
            notice = RefundNotice(
                refund_id=refund.id, succeeded=state.status == RefundStatus.SUCCEEDED
            )
            handle = self._parts.temporal.get_workflow_handle(refund_workflow_id(refund.id))
            try:
                await handle.signal("refund_notification", notice)
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:  # ended: it knew already
                    raise
        # A saga's own refund is awaited by polling in its child (workflows.saga_refund):
        # the channel's answer reaches it at its next check.
        return f"the channel says the refund {state.status}: passed on to its workflow"

    def _refund(self, refund_id: str) -> _RefundLookup | None:
        """The refund, and the out_trade_no of the payment it gives back (the paid attempt's)."""
        with self._sessions() as session:
            row = session.get(Refund, refund_id)
            if row is None:
                return None
            paid = session.exec(
                select(Payment).where(Payment.order_id == row.order_id, Payment.status == "paid")
            ).first()
            reference = (
                stored_payment_reference(paid.order_id, paid.attempt, paid.channel_payment_id)
                if paid is not None
                else row.order_id
            )
            return _RefundLookup(row.id, row.requested_by != "system", reference)


@dataclass(frozen=True)
class _RefundLookup:
    id: str
    requested: bool  # asked by a party (its own RefundWorkflow), not a saga's own
    payment_reference: str


@contextlib.contextmanager
def _channel_errors() -> Iterator[None]:
    """A channel that cannot answer now is asked again; any other refusal leaves the
    exception open for an operator (the activity answers without resolving it)."""
    try:
        yield
    except ChannelUnavailable as error:
        raise retryable_error(CHANNEL_UNAVAILABLE, error.message) from None
    except (PaymentNotFound, ChannelRejected) as error:
        raise ApplicationError(str(error), type="ChannelRefused", non_retryable=True) from None


def _normalise(source: BillSource, downloaded: Path, target: Path) -> int:
    """Write the matcher's CSV from the bill's lines and check them against its summary:
    the number of lines, and the gross payments and refunds (not the fees: channels state
    net fees each their own way, and a fee difference is the matcher's to report)."""
    summary = source.summary(downloaded)
    totals = {BillLineKind.PAYMENT: 0, BillLineKind.REFUND: 0}

    def counted() -> Iterator[BillLine]:
        for line in source.lines(downloaded):
            if line.kind in totals:
                totals[line.kind] += line.amount
            yield line

    lines = write_bill_csv(counted(), target)
    stated = (summary.lines, summary.payments, summary.refunds)
    if (lines, totals[BillLineKind.PAYMENT], totals[BillLineKind.REFUND]) != stated:
        target.unlink(missing_ok=True)
        raise BillCorrupt(f"the bill's lines do not add up to its summary {stated}")
    return lines
