"""Reconciliation's records: one run row per channel-day, its exceptions, their closing.

Every write is idempotent: a run's row is keyed by its channel-day, an exception by
what it is about (`domain.reconciliation.exception_id`), an adjusting entry by its
exception. An exception closed by the worker's action or by an operator is never reopened.

A channel-day matched again (a lost payment delivered since, a refund's status
refreshed, a corrected bill) closes each open exception the new match no longer finds:
auto_resolved, its note saying so; one of those a later match finds again is open
again. What an operator resolved, or the worker's action settled, stays as it was left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from db.ledger import post_entry
from db.tables import Merchant, ReconciliationException, ReconciliationRun
from db.writes import insert_ignore
from domain.ledger import PLATFORM, AccountKind, EntryKind
from domain.reconciliation import (
    Discrepancy,
    DiscrepancyType,
    ExceptionStatus,
    ResolutionRefused,
    RunResult,
    RunStatus,
    adjustment_entry_id,
    adjustment_postings,
    auto_action,
    exception_id,
    run_id,
)


def start_run(session: Session, channel: str, day: date, now: datetime) -> None:
    """The channel-day's row, running; a run started again reuses it."""
    created = insert_ignore(
        session,
        ReconciliationRun,
        {
            "id": run_id(channel, day),
            "channel": channel,
            "day": day.isoformat(),
            "status": RunStatus.RUNNING.value,
            "bill_lines": 0,
            "exception_count": 0,
            "auto_resolved_count": 0,
            "started_at": now,
        },
    )
    if not created:
        row = session.get(ReconciliationRun, run_id(channel, day), with_for_update=True)
        assert row is not None
        row.status, row.finished_at, row.started_at = RunStatus.RUNNING, None, now


def record_exceptions(
    session: Session,
    channel: str,
    day: date,
    found: Sequence[Discrepancy],
    known_orders: frozenset[str],
    now: datetime,
    *,
    complete: bool = False,
) -> Recorded:
    """Store each difference once; which were new, and those still open the worker may
    act on. `complete`: `found` is everything a whole match of the day's bill found, so
    an open exception of the channel-day not among it no longer differs and is closed."""
    automatic, new, keys = [], [], set()
    again: dict[str, Discrepancy] = {}
    for discrepancy in found:
        action = auto_action(discrepancy, discrepancy.order_id in known_orders)
        key = exception_id(
            channel, day, discrepancy.type, discrepancy.line_kind, discrepancy.reference
        )
        created = insert_ignore(
            session,
            ReconciliationException,
            {
                "id": key,
                "run_id": run_id(channel, day),
                "channel": channel,
                "day": day.isoformat(),
                **discrepancy.model_dump(mode="json"),
                "auto_action": action.value if action else None,
                "status": ExceptionStatus.OPEN.value,
                "created_at": now,
            },
        )
        keys.add(key)
        if created:
            new.append(discrepancy.type)
        else:
            again[key] = discrepancy
        if action is not None:
            automatic.append(key)
    new += _reopen_found_again(session, again)
    still_open: list[str] = []
    if automatic:
        still_open = list(
            session.exec(
                select(ReconciliationException.id).where(
                    col(ReconciliationException.id).in_(automatic),
                    ReconciliationException.status == ExceptionStatus.OPEN,
                )
            ).all()
        )
    gone = _close_gone(session, run_id(channel, day), keys, now) if complete else ()
    return Recorded(new_types=tuple(new), automatic=tuple(sorted(still_open)), closed_types=gone)


NO_LONGER_DIFFERS = "no longer differs: the run of {now} matched the bill again without it"
_GONE_PREFIX = NO_LONGER_DIFFERS.split(":", 1)[0] + ":"


def _reopen_found_again(session: Session, found: dict[str, Discrepancy]) -> list[DiscrepancyType]:
    """An exception a run closed as no longer differing that a later match finds again
    (a bill corrected back, a status that changed back) is open again, with the figures
    found now: a difference is never left closed while it is there. Closed by an
    operator or by the worker's action, it stays closed."""
    if not found:
        return []
    rows = session.exec(
        select(ReconciliationException)
        .where(
            col(ReconciliationException.id).in_(sorted(found)),
            ReconciliationException.status == ExceptionStatus.AUTO_RESOLVED,
            col(ReconciliationException.resolution_reason).startswith(_GONE_PREFIX),
        )
        .order_by(col(ReconciliationException.id))
        .with_for_update()
    ).all()
    for row in rows:
        for field, value in found[row.id].model_dump(mode="json").items():
            setattr(row, field, value)
        row.status = ExceptionStatus.OPEN
        row.resolution_reason, row.resolved_at = None, None
    session.flush()
    return [DiscrepancyType(row.type) for row in rows]


def _close_gone(
    session: Session, run: str, found: set[str], now: datetime
) -> tuple[DiscrepancyType, ...]:
    """Close the run's open exceptions that are not in `found`; their types."""
    stale = session.exec(
        select(ReconciliationException)
        .where(
            ReconciliationException.run_id == run,
            ReconciliationException.status == ExceptionStatus.OPEN,
        )
        .order_by(col(ReconciliationException.id))
        .with_for_update()
    ).all()
    closed = []
    note = NO_LONGER_DIFFERS.format(now=now.isoformat(timespec="seconds"))
    for row in stale:
        if row.id in found:
            continue
        row.status = ExceptionStatus.AUTO_RESOLVED
        row.resolution_reason, row.resolved_at = note, now
        closed.append(DiscrepancyType(row.type))
    session.flush()
    return tuple(closed)


@dataclass(frozen=True)
class Recorded:
    new_types: tuple[DiscrepancyType, ...]  # of the exceptions this call stored first
    automatic: tuple[str, ...]  # open exceptions the worker may act on
    closed_types: tuple[DiscrepancyType, ...] = ()  # of those closed as no longer differing


def finish_run(
    session: Session, channel: str, day: date, bill_lines: int, now: datetime
) -> RunResult:
    """Close the run with its counts, read from its exceptions (all of them, any run's)."""
    row = session.get(ReconciliationRun, run_id(channel, day), with_for_update=True)
    assert row is not None, "the run was started"
    counts = dict(
        session.exec(
            select(ReconciliationException.type, func.count())
            .where(ReconciliationException.run_id == row.id)
            .group_by(col(ReconciliationException.type))
        ).all()
    )
    auto = session.exec(
        select(func.count()).where(
            ReconciliationException.run_id == row.id,
            ReconciliationException.status == ExceptionStatus.AUTO_RESOLVED,
        )
    ).one()
    row.status, row.finished_at, row.bill_lines = RunStatus.FINISHED, now, bill_lines
    row.exception_count, row.auto_resolved_count = sum(counts.values()), int(auto)
    return RunResult(
        channel=channel,
        day=day,
        status=RunStatus.FINISHED,
        bill_lines=bill_lines,
        exceptions=row.exception_count,
        counts={str(k): int(v) for k, v in counts.items()},
        auto_resolved=row.auto_resolved_count,
    )


def close_automatically(session: Session, exception: str, note: str, now: datetime) -> bool:
    """The worker's action settled it; False when it was closed already."""
    row = session.get(ReconciliationException, exception, with_for_update=True)
    if row is None or row.status != ExceptionStatus.OPEN:
        return False
    row.status = ExceptionStatus.AUTO_RESOLVED
    row.resolution_reason, row.resolved_at = note, now
    return True


@dataclass(frozen=True)
class Adjustment:
    """An operator's approved correction: `amount` raises (> 0) or lowers `account_kind`
    of `owner` as its holder reads it, in the exception's currency unless given."""

    account_kind: AccountKind
    owner: str | None
    amount: int
    currency: str | None = None


def resolve_exception(
    session: Session,
    exception: str,
    operator_id: str,
    reason: str,
    adjustment: Adjustment | None,
    now: datetime,
) -> ReconciliationException | None:
    """An operator closes an open exception with a reason, posting the adjusting entry if
    money must move. None: no such exception. A repeat of the same resolution by the same
    operator answers with it; any other on a closed exception is refused."""
    row = session.get(ReconciliationException, exception, with_for_update=True)
    if row is None:
        return None
    if row.status != ExceptionStatus.OPEN:
        if (row.resolved_by, row.resolution_reason) == (operator_id, reason):
            return row
        raise ResolutionRefused("exception_closed", f"exception {exception} is {row.status}")
    entry = None
    if adjustment is not None:
        entry = _post_adjustment(session, row, adjustment)
    row.status = ExceptionStatus.RESOLVED
    row.resolution_reason, row.resolved_by, row.resolved_at = reason, operator_id, now
    row.adjustment_entry_id = entry
    session.flush()
    return row


def _post_adjustment(session: Session, row: ReconciliationException, adjustment: Adjustment) -> str:
    currency = adjustment.currency or row.currency
    if currency is None:
        raise ResolutionRefused("currency_required", "this exception has no currency", "currency")
    owner = _owner(session, row, adjustment)
    postings = adjustment_postings(
        DiscrepancyType(row.type), adjustment.account_kind, owner, currency, adjustment.amount
    )
    entry = adjustment_entry_id(row.id)
    merchant = owner if adjustment.account_kind == AccountKind.MERCHANT_AVAILABLE else None
    post_entry(
        session,
        entry_id=entry,
        kind=EntryKind.ADJUSTMENT,
        currency=currency,
        postings=postings,
        merchant_id=merchant,
    )
    return entry


def _owner(session: Session, row: ReconciliationException, adjustment: Adjustment) -> str:
    """Whose account: the exception's channel's, the platform's, or a named merchant's."""
    kind = adjustment.account_kind
    if kind in (AccountKind.CHANNEL_CLEARING, AccountKind.CHANNEL_FEE):
        wanted = row.channel
    elif kind in (AccountKind.BANK, AccountKind.PLATFORM_COMMISSION):
        wanted = PLATFORM
    else:
        if adjustment.owner is None or session.get(Merchant, adjustment.owner) is None:
            raise ResolutionRefused("merchant_not_found", "name the merchant to adjust", "owner")
        return adjustment.owner
    if adjustment.owner not in (None, wanted):
        raise ResolutionRefused("owner_invalid", f"a {kind} account here is {wanted}'s", "owner")
    return wanted
