"""The state gauges count the payouts the bank has not answered, and say how long the
oldest has waited: a payout left pending, by a slow bank or by no settlement driving
it, shows on the API's /metrics (and PayoutsUnansweredTooLong fires on it,
deploy/prometheus/tests.yml); once the bank answers it leaves both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.core import Metric
from sqlmodel import Session

from db.engine import session_factory
from db.order_money import release_funds
from db.settlement import mark_payout_paid, prepare_statement, statement_payout
from db.tables import Payout
from metrics.state import DatabaseState
from tests.db.conftest import CURRENCY, Shop


def _pending_payout(shop: Shop, created: datetime) -> str:
    order_id = shop.paid_order()
    with Session(shop.engine) as session, session.begin():
        release_funds(session, order_id)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    with Session(shop.engine) as session, session.begin():
        statement = prepare_statement(
            session, shop.merchant_id, CURRENCY, tomorrow, datetime.now(UTC)
        )
        assert statement is not None
        payout = statement_payout(session, statement)
        assert payout is not None
        payout.created_at = created  # prepared then, never answered since
        return payout.id


def _gauges(shop: Shop) -> dict[str, float]:
    """The CNY samples of the payout gauges, read afresh."""
    state = DatabaseState(session_factory(shop.engine), timedelta(days=1), refresh_seconds=0)
    families: list[Metric] = list(state.collect())
    return {
        sample.name: sample.value
        for family in families
        for sample in family.samples
        if sample.name.startswith("paysaga_payouts_pending")
        and sample.labels.get("currency") == CURRENCY
    }


def test_a_payout_the_bank_has_not_answered_is_counted_with_its_age(shop: Shop) -> None:
    before = _gauges(shop).get("paysaga_payouts_pending", 0.0)
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    payout_id = _pending_payout(shop, three_days_ago)

    pending = _gauges(shop)
    assert pending["paysaga_payouts_pending"] == before + 1
    # The oldest pending payout of the database: this one, unless another test's is older.
    waited = pending["paysaga_payouts_pending_oldest_seconds"]
    assert waited >= timedelta(days=3).total_seconds() - 5

    with Session(shop.engine) as session, session.begin():
        mark_payout_paid(session, payout_id, "bank-ref-1")
        assert session.get_one(Payout, payout_id).status == "paid"
    answered = _gauges(shop)
    assert answered.get("paysaga_payouts_pending", 0.0) == before
    three_days = timedelta(days=3).total_seconds()
    assert answered.get("paysaga_payouts_pending_oldest_seconds", 0.0) < three_days
