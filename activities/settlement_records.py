"""Database activities of settlement: statements and their payouts' outcomes.

Each runs in one transaction and is idempotent by its statement or payout id,
so a retried or replayed step finds its earlier work. A payout's outcome is counted
(`metrics.business`) after its commit when the payout, read under its row lock, was
still pending: the first outcome stands, and so does its count.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session
from temporalio import activity

from db.engine import SessionFactory
from db.settlement import (
    day_cutoff,
    day_statements,
    days_with_payouts_pending,
    mark_payout_paid,
    mark_payout_returned,
    merchants_with_payouts_pending,
    merchants_with_something_to_settle,
    prepare_statements,
    record_credit,
    statements_payouts,
)
from db.tables import Payout
from domain.keys import statement_merchant
from domain.settlement import (
    MerchantDay,
    MerchantsPage,
    PayoutOrder,
    PayoutOutcome,
    PayoutStatus,
    PreparedPage,
    PreparedStatements,
    SettlementRunInput,
)
from metrics.business import BusinessMetrics

log = logging.getLogger(__name__)

WHOLE_PAGE_ATTEMPTS = 5
"""Attempts at a page in one transaction before each merchant is tried on its own (the
retries are a second apart at first, up to 30 s: a database back within a minute or so
still gets the page in one)."""


class SettlementRecords:
    def __init__(self, sessions: SessionFactory, metrics: BusinessMetrics | None = None) -> None:
        self._sessions = sessions
        self._metrics = metrics if metrics is not None else BusinessMetrics()

    @activity.defn
    def merchants_to_settle(self, scope: SettlementRunInput) -> list[str]:
        """The merchants the day's statements have something for (of those asked, if any)."""
        return self._remaining(scope, after="")

    @activity.defn
    def merchants_page(self, scope: SettlementRunInput) -> MerchantsPage:
        """The next `merchants_per_run` merchants after `scope.after`, in id order.

        Settled merchants drop out of the list, so the cursor is an id, not an offset; the
        count of those remaining lets the run show the day's whole progress. Only merchants
        after the cursor are looked at, so a day's pages cost about one look at each.
        """
        remaining = self._remaining(scope, after=scope.after or "")
        return MerchantsPage(
            merchant_ids=tuple(remaining[: scope.merchants_per_run]), remaining=len(remaining)
        )

    def _remaining(self, scope: SettlementRunInput, after: str) -> list[str]:
        assert scope.day is not None
        with self._sessions() as session:
            found = merchants_with_something_to_settle(
                session, day_cutoff(scope.day, datetime.now(UTC)), after
            )
        return [m for m in found if m in scope.merchant_ids] if scope.merchant_ids else found

    @activity.defn
    def days_to_run_again(self, scope: SettlementRunInput) -> list[date]:
        """The `look_back_days` days before the run's with a payout the bank has not
        answered (of the run's merchants, if it names them), oldest first."""
        assert scope.day is not None
        since = scope.day - timedelta(days=scope.look_back_days)
        with self._sessions() as session:
            return days_with_payouts_pending(session, since, scope.day, scope.merchant_ids)

    @activity.defn
    def prepare_page(self, scope: SettlementRunInput) -> PreparedPage:
        """The next page of the day's merchants after `scope.after`, prepared in one
        transaction: their statements made (once each), and each merchant's statements and
        payouts the bank has not answered yet.

        The page is every merchant with a statement to make or a payout of the day not
        finished, so a merchant prepared here stays on it until its payouts are answered:
        a retry after the commit (or a later run of the day) gets them again, whoever
        asked the bank for them before. A regular activity: the run's retried workflow task
        replays its result rather than asking again.
        """
        assert scope.day is not None
        attempt = activity.info().attempt if activity.in_activity() else 1  # the bench's
        if attempt > WHOLE_PAGE_ATTEMPTS:
            return self._prepare_one_by_one(scope, scope.day)
        with self._sessions() as session, session.begin():
            found = self._to_prepare(session, scope, scope.day)
            page = found[: scope.merchants_per_run]
            statements = _statements(session, scope, page, scope.day)
            payouts = statements_payouts(session, statements, pending_only=True)
        return PreparedPage(
            merchants=_prepared(page, statements, payouts),
            remaining=len(found),
            through=page[-1] if page else None,
        )

    def _prepare_one_by_one(self, scope: SettlementRunInput, day: date) -> PreparedPage:
        """The page again, after the whole of it failed time and again: each merchant in a
        transaction of its own, so one that keeps failing (a bug, a broken row) holds up
        neither the page nor the day. One left out is logged; nothing of it changed: its
        balance waits for a later statement, and a payout of it still unanswered for a
        later run of the day (which lists it again). The database failing (connection,
        lock, serialisation) is not a merchant's fault: it fails the page, retried, as
        does a page none of which goes through."""
        with self._sessions() as session:
            found = self._to_prepare(session, scope, day)
        page = found[: scope.merchants_per_run]
        kept: list[str] = []
        statements: list[str] = []
        for merchant in page:
            try:
                with self._sessions() as session, session.begin():
                    statements += _statements(session, scope, [merchant], day)
            except (OperationalError, InterfaceError):
                raise  # the database, not the merchant: the page is retried
            except Exception:
                log.exception(
                    "settlement of merchant %s for %s failed; left for a later run",
                    merchant,
                    day,
                    extra={"merchant_id": merchant, "event": "settlement_merchant_left_out"},
                )
                continue
            kept.append(merchant)
        if page and not kept:
            raise RuntimeError(f"no merchant of the page after {scope.after!r} could be prepared")
        with self._sessions() as session:
            payouts = statements_payouts(session, statements, pending_only=True)
        return PreparedPage(
            merchants=_prepared(kept, statements, payouts),
            remaining=len(found),
            through=page[-1] if page else None,
        )

    def _to_prepare(self, session: Session, scope: SettlementRunInput, day: date) -> list[str]:
        after = scope.after or ""
        found = set(merchants_with_payouts_pending(session, day, after))
        if not scope.unanswered_only:
            cutoff = day_cutoff(day, datetime.now(UTC))
            found.update(merchants_with_something_to_settle(session, cutoff, after))
        wanted = set(scope.merchant_ids)
        return sorted(m for m in found if not wanted or m in wanted)

    @activity.defn
    def prepare_statements(self, merchant_day: MerchantDay) -> list[PayoutOrder]:
        """The merchant's statements for the day (one per currency), made once each."""
        with self._sessions() as session, session.begin():
            statements = prepare_statements(
                session, (merchant_day.merchant_id,), merchant_day.day, datetime.now(UTC)
            )
            payouts = statements_payouts(session, statements)
        return [_payout_order(row) for row in payouts]

    @activity.defn
    def record_payout(self, outcome: PayoutOutcome) -> None:
        """Paid: the money leaves in transit. Refused: it returns to available, with why."""
        with self._sessions() as session, session.begin():
            payout = session.get_one(Payout, outcome.payout_id, with_for_update=True)
            pending = payout.status == PayoutStatus.PENDING
            currency, amount = payout.currency, payout.amount
            if outcome.paid:
                mark_payout_paid(session, outcome.payout_id, outcome.bank_reference)
                record_credit(session, outcome.payout_id, outcome.credited)
            else:
                reason = outcome.failure_reason or "refused by the bank"
                mark_payout_returned(session, outcome.payout_id, reason)
        if pending:
            self._metrics.payout_finished(currency, amount, outcome.paid)

    @activity.defn
    def day_statements(self, merchant_day: MerchantDay) -> list[str]:
        with self._sessions() as session:
            return day_statements(session, [merchant_day.merchant_id], merchant_day.day)


def _statements(
    session: Session, scope: SettlementRunInput, merchants: Sequence[str], day: date
) -> list[str]:
    """The merchants' statements for the day: made where missing (`prepare_statements`),
    or, for a day run again for its unanswered payouts, those there are."""
    if scope.unanswered_only:
        return day_statements(session, merchants, day)
    return prepare_statements(session, merchants, day, datetime.now(UTC))


def _payout_order(row: Row[Any]) -> PayoutOrder:
    return PayoutOrder(
        payout_id=row.id,
        statement_id=row.statement_id,
        merchant_id=row.merchant_id,
        amount=row.amount,
        currency=row.currency,
        beneficiary=row.name if row.name is not None else row.merchant_id,
        credit_currency=row.credit_currency,
    )


def _prepared(
    merchants: Sequence[str], statements: Sequence[str], payouts: Sequence[Row[Any]]
) -> tuple[PreparedStatements, ...]:
    statements_of: dict[str, list[str]] = {}
    for statement in statements:
        statements_of.setdefault(statement_merchant(statement), []).append(statement)
    payouts_of: dict[str, list[PayoutOrder]] = {}
    for row in payouts:
        payouts_of.setdefault(row.merchant_id, []).append(_payout_order(row))
    return tuple(
        PreparedStatements(
            merchant_id=merchant,
            statement_ids=tuple(statements_of.get(merchant, ())),
            payouts=tuple(payouts_of.get(merchant, ())),
        )
        for merchant in merchants
    )
