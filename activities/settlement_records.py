"""Database activities of settlement: statements and their payouts' outcomes.

Each runs in one transaction and is idempotent by its statement or payout id,
so a retried or replayed step finds its earlier work.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import col, select
from temporalio import activity

from db.engine import SessionFactory
from db.settlement import (
    accounts_to_settle,
    mark_payout_paid,
    mark_payout_returned,
    prepare_statement,
    statement_payout,
)
from db.tables import Merchant, Statement
from domain.settlement import MerchantDay, PayoutOrder, PayoutOutcome


class SettlementRecords:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn
    def merchants_to_settle(self, day: date) -> list[str]:
        """Every merchant with an available balance in any currency, in id order."""
        with self._sessions() as session:
            return sorted({merchant for merchant, _ in accounts_to_settle(session)})

    @activity.defn
    def prepare_statements(self, merchant_day: MerchantDay) -> list[PayoutOrder]:
        """The merchant's statements for the day (one per currency), made once each."""
        with self._sessions() as session:
            currencies = sorted(
                currency
                for merchant, currency in accounts_to_settle(session)
                if merchant == merchant_day.merchant_id
            )
            merchant = session.get(Merchant, merchant_day.merchant_id)
        beneficiary = merchant.name if merchant is not None else merchant_day.merchant_id
        payouts: list[PayoutOrder] = []
        for currency in currencies:
            with self._sessions() as session, session.begin():
                statement = prepare_statement(
                    session, merchant_day.merchant_id, currency, merchant_day.day, datetime.now(UTC)
                )
                payout = statement_payout(session, statement) if statement else None
                if payout is not None:
                    payouts.append(
                        PayoutOrder(
                            payout_id=payout.id,
                            statement_id=payout.statement_id,
                            merchant_id=payout.merchant_id,
                            amount=payout.amount,
                            currency=payout.currency,
                            beneficiary=beneficiary,
                        )
                    )
        return payouts

    @activity.defn
    def record_payout(self, outcome: PayoutOutcome) -> None:
        """Paid: the money leaves in transit. Refused: it returns to available, with why."""
        with self._sessions() as session, session.begin():
            if outcome.paid:
                mark_payout_paid(session, outcome.payout_id, outcome.bank_reference)
            else:
                reason = outcome.failure_reason or "refused by the bank"
                mark_payout_returned(session, outcome.payout_id, reason)

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
