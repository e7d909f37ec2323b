"""The operator's view of reconciliation: runs, the exception queue, resolving one.

Resolving is the only way an exception closes by hand: with a reason, by a named
operator, and with an adjusting journal entry (EntryKind.ADJUSTMENT against
`adjustments:{exception type}`) when money must move. Nothing is changed silently.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func
from sqlmodel import Session, col, select

from api.errors import Conflict, InvalidRequest, NotFound
from api.pagination import Keyset, bad_cursor, fetch_page
from api.reconciliation_schemas import ExceptionOut, ExceptionPage, ResolveIn, RunOut
from api.services.records import now
from db.ledger import InsufficientFunds
from db.reconciliation import Adjustment, resolve_exception
from db.tables import ReconciliationException, ReconciliationRun
from domain.ledger import AccountKind
from domain.reconciliation import (
    DiscrepancyType,
    ExceptionStatus,
    ResolutionRefused,
    RunStatus,
    run_id,
)

_NEWEST_FIRST = Keyset((ReconciliationException.created_at, ReconciliationException.id))


def run_view(session: Session, channel: str, day: date) -> RunOut | None:
    row = session.get(ReconciliationRun, run_id(channel, day))
    if row is None:
        return None
    by = session.exec(
        select(ReconciliationException.type, ReconciliationException.status, func.count())
        .where(ReconciliationException.run_id == row.id)
        .group_by(col(ReconciliationException.type), col(ReconciliationException.status))
    ).all()
    counts: dict[str, int] = {}
    for kind, _, count in by:
        counts[kind] = counts.get(kind, 0) + int(count)
    return RunOut(
        channel=row.channel,
        day=date.fromisoformat(row.day),
        status=RunStatus(row.status),
        bill_lines=row.bill_lines,
        exception_count=row.exception_count,
        auto_resolved_count=row.auto_resolved_count,
        open_count=sum(int(n) for _, status, n in by if status == ExceptionStatus.OPEN),
        counts=counts,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def starting_view(channel: str, day: date) -> RunOut:
    """A run just started, before its worker wrote its row."""
    return RunOut(
        channel=channel,
        day=day,
        status=RunStatus.RUNNING,
        bill_lines=0,
        exception_count=0,
        auto_resolved_count=0,
        open_count=0,
        counts={},
        started_at=now(),
        finished_at=None,
    )


def list_exceptions(
    session: Session,
    *,
    channel: str | None,
    day: date | None,
    kind: DiscrepancyType | None,
    status: ExceptionStatus | None,
    limit: int,
    starting_after: str | None,
) -> ExceptionPage:
    """Newest first, filtered; `starting_after` is the last id of the previous page."""
    query = select(ReconciliationException)
    if channel is not None:
        query = query.where(ReconciliationException.channel == channel)
    if day is not None:
        query = query.where(ReconciliationException.day == day.isoformat())
    if kind is not None:
        query = query.where(ReconciliationException.type == kind.value)
    if status is not None:
        query = query.where(ReconciliationException.status == status.value)
    cursor = None
    if starting_after is not None:
        cursor = session.get(ReconciliationException, starting_after)
        if cursor is None:
            raise bad_cursor(starting_after)
    page = fetch_page(session, _NEWEST_FIRST.ordered(query, cursor), limit)
    return ExceptionPage(
        data=[exception_out(row) for row in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor(lambda row: row.id),
    )


def resolve(session: Session, exception_id: str, operator_id: str, body: ResolveIn) -> ExceptionOut:
    adjustment = None
    if body.adjustment is not None:
        a = body.adjustment
        adjustment = Adjustment(AccountKind(a.account_kind), a.owner, a.amount, a.currency)
    try:
        row = resolve_exception(session, exception_id, operator_id, body.reason, adjustment, now())
    except ResolutionRefused as refused:
        if refused.code == "exception_closed":
            raise Conflict(refused.code, refused.message, None) from None
        param = f"adjustment.{refused.param}" if refused.param else None
        raise InvalidRequest(refused.code, refused.message, param) from None
    except InsufficientFunds as error:
        message = f"the adjustment would take {error.account} below zero"
        raise Conflict("insufficient_funds", message, "adjustment.amount") from None
    if row is None:
        raise NotFound("exception_not_found", f"no exception {exception_id}", "exception_id")
    return exception_out(row)


def exception_out(row: ReconciliationException) -> ExceptionOut:
    return ExceptionOut.model_validate({**row.model_dump(), "day": date.fromisoformat(row.day)})
