"""Database activities of settlement: statements and their payouts' outcomes.

Each runs in one transaction and is idempotent by its statement or payout id,
so a retried or replayed step finds its earlier work. A payout's outcome is counted
(`metrics.business`) after its commit when the payout, read under its row lock, was
still pending: the first outcome stands, and so does its count.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select
from temporalio import activity

from db.engine import SessionFactory
from db.settlement import (
    day_cutoff,
    mark_payout_paid,
    mark_payout_returned,
    merchants_with_something_to_settle,
    prepare_statements,
    record_credit,
    statements_payouts,
)
from db.tables import Payout, Statement
from domain.settlement import (
    MerchantDay,
    MerchantsPage,
    PayoutOrder,
    PayoutOutcome,
    PayoutStatus,
    SettlementRunInput,
)
from metrics.business import BusinessMetrics


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
    def prepare_statements(self, merchant_day: MerchantDay) -> list[PayoutOrder]:
        """The merchant's statements for the day (one per currency), made once each."""
        with self._sessions() as session, session.begin():
            statements = prepare_statements(
                session, (merchant_day.merchant_id,), merchant_day.day, datetime.now(UTC)
            )
            payouts = statements_payouts(session, statements)
        return [
            PayoutOrder(
                payout_id=row.id,
                statement_id=row.statement_id,
                merchant_id=row.merchant_id,
                amount=row.amount,
                currency=row.currency,
                beneficiary=row.name if row.name is not None else row.merchant_id,
                credit_currency=row.credit_currency,
            )
            for row in payouts
        ]

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
            return list(
                session.exec(
                    select(Statement.id)
                    .where(
                        Statement.merchant_id == merchant_day.merchant_id,
                        Statement.day == merchant_day.day.isoformat(),
                    )
                    .order_by(col(Statement.id))
                ).all()
            )
