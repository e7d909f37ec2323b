"""Gauges read from the database when Prometheus scrapes the API: the state of things.

A handful of grouped counts (the open orders through the status index, the review
flags, undelivered webhook events, payouts the bank has not answered through their
partial index) and the ledger's trial balance, read in one session
and kept for `refresh_seconds`, so that any number of scrapers costs one read per
interval. With several API replicas each reports the same values: rules take `max`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func
from sqlmodel import Session, col, select

from channels.base import ChannelName
from db.engine import SessionFactory
from db.reconcile import trial_balance
from db.tables import Merchant, Order, Payout, WebhookEvent
from db.times import as_utc
from domain.order_status import FINAL_STATUSES, OrderStatus
from domain.settlement import PayoutStatus

OPEN_STATUSES = tuple(s.value for s in OrderStatus if s not in FINAL_STATUSES)
UNPAID_STATUSES = (OrderStatus.CREATED.value, OrderStatus.AWAITING_PAYMENT.value)
CHANNELS = tuple(c.value for c in ChannelName)
WEBHOOK_STATES = ("new", "retrying", "expired")

logger = logging.getLogger(__name__)


class DatabaseState(Collector):
    """Collects the gauges; registered on the API's registry for the app's lifetime."""

    def __init__(
        self,
        sessions: SessionFactory,
        webhook_window: timedelta,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._webhook_window = webhook_window
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()  # scrapes may overlap; one reads, the other waits
        self._read_at: float | None = None
        self._families: list[Metric] = []

    def describe(self) -> Iterable[Metric]:
        """The families' names, without reading the database at registration."""
        return _families(_Reading(), up=True)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._refresh_seconds:
                self._families = self._read()
                self._read_at = now
            return list(self._families)

    def _read(self) -> list[Metric]:
        try:
            with self._sessions() as session:
                reading = _read(session, datetime.now(UTC), self._webhook_window)
        except Exception:
            logger.warning("could not read the state gauges from the database", exc_info=True)
            return _families(_Reading(), up=False)
        return _families(reading, up=True)


class _Reading:
    def __init__(self) -> None:
        self.open: dict[tuple[str, ...], float] = {}
        self.past_timeout: dict[str, float] = {}
        self.overdue_seconds: dict[str, float] = {}
        self.review: dict[str, float] = {}
        self.webhooks: dict[str, float] = {}
        self.payouts_pending: dict[str, float] = {}  # by currency
        self.payout_waiting_seconds: dict[str, float] = {}  # the oldest's, by currency
        self.trial_balance: Mapping[str, float] = {}


def _read(session: Session, now: datetime, webhook_window: timedelta) -> _Reading:
    reading = _Reading()
    status, channel = col(Order.status), col(Order.channel)
    for row_channel, row_status, count in session.exec(
        select(channel, status, func.count())
        .where(status.in_(OPEN_STATUSES))
        .group_by(channel, status)
    ):
        reading.open[(row_channel, row_status)] = count
    _read_overdue(session, now, reading)
    for row_channel, count in session.exec(
        select(channel, func.count()).where(col(Order.needs_review)).group_by(channel)
    ):
        reading.review[row_channel] = count
    _read_webhooks(session, now - webhook_window, reading)
    _read_payouts(session, now, reading)
    reading.trial_balance = dict(trial_balance(session))
    return reading


def _read_overdue(session: Session, now: datetime, reading: _Reading) -> None:
    """Unpaid orders past their own payment timeout. One grouped query finds the oldest
    of each (channel, timeout); only a group whose oldest is overdue is counted."""
    status, channel = col(Order.status), col(Order.channel)
    timeout, created = col(Order.payment_timeout_seconds), col(Order.created_at)
    groups = session.exec(
        select(channel, timeout, func.min(created))
        .where(status.in_(UNPAID_STATUSES))
        .group_by(channel, timeout)
    ).all()
    for row_channel, seconds, oldest in groups:
        deadline_passed_before = now - timedelta(seconds=seconds)
        overdue = (deadline_passed_before - as_utc(oldest)).total_seconds()
        if overdue <= 0:
            continue
        count = session.exec(
            select(func.count()).where(
                status.in_(UNPAID_STATUSES),
                channel == row_channel,
                timeout == seconds,
                created < deadline_passed_before,
            )
        ).one()
        reading.past_timeout[row_channel] = reading.past_timeout.get(row_channel, 0) + count
        reading.overdue_seconds[row_channel] = max(
            overdue, reading.overdue_seconds.get(row_channel, 0.0)
        )


def _read_webhooks(session: Session, expired_before: datetime, reading: _Reading) -> None:
    """Undelivered events of merchants with an endpoint: never tried yet (new), failing
    and retried (retrying), or older than the delivery window: given up (expired)."""
    created, attempts = col(WebhookEvent.created_at), col(WebhookEvent.attempts)
    state = case((created < expired_before, "expired"), (attempts == 0, "new"), else_="retrying")
    for row_state, count in session.exec(
        select(state, func.count())
        .join(Merchant, col(Merchant.id) == col(WebhookEvent.merchant_id))
        .where(col(WebhookEvent.delivered_at).is_(None), col(Merchant.webhook_url).is_not(None))
        .group_by(state)
    ):
        reading.webhooks[row_state] = count


def _read_payouts(session: Session, now: datetime, reading: _Reading) -> None:
    """Payouts the bank has not answered (pending), and how long the oldest has waited: a
    settlement polls each until the bank says, so one waiting for days is a slow bank or
    a payout no settlement drives (a run ended before handing it over)."""
    status, currency = col(Payout.status), col(Payout.currency)
    for row_currency, count, oldest in session.exec(
        select(currency, func.count(), func.min(col(Payout.created_at)))
        .where(status == PayoutStatus.PENDING.value)
        .group_by(currency)
    ):
        reading.payouts_pending[row_currency] = count
        waited = (now - as_utc(oldest)).total_seconds()
        reading.payout_waiting_seconds[row_currency] = max(waited, 0.0)


def _gauge(
    name: str,
    documentation: str,
    labels: Sequence[str],
    values: Iterable[tuple[Sequence[str], float]],
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in sorted(values):
        family.add_metric(label_values, value)
    return family


def _families(reading: _Reading, *, up: bool) -> list[Metric]:
    """Every combination of known labels is present (0 when nothing is there), so that
    dashboards draw a line and rules need no `absent`."""
    if not up:
        return [GaugeMetricFamily("paysaga_database_state_up", _UP_HELP, value=0)]
    channels = [(c,) for c in CHANNELS]
    return [
        GaugeMetricFamily("paysaga_database_state_up", _UP_HELP, value=1),
        _gauge(
            "paysaga_orders_open",
            "Orders not in a final status, by status.",
            ["channel", "status"],
            _zero_filled([(c, s) for c in CHANNELS for s in OPEN_STATUSES], reading.open),
        ),
        _gauge(
            "paysaga_orders_past_payment_timeout",
            "Unpaid orders still open after their payment timeout.",
            ["channel"],
            _zero_filled(channels, _by_one(reading.past_timeout)),
        ),
        _gauge(
            "paysaga_orders_payment_overdue_seconds",
            "How long past its payment timeout the oldest unpaid open order is (0: none).",
            ["channel"],
            _zero_filled(channels, _by_one(reading.overdue_seconds)),
        ),
        _gauge(
            "paysaga_orders_needing_review",
            "Orders flagged for an operator's review.",
            ["channel"],
            _zero_filled(channels, _by_one(reading.review)),
        ),
        _gauge(
            "paysaga_webhook_events_undelivered",
            "Merchant webhook events not delivered yet, of merchants with an endpoint.",
            ["state"],
            _zero_filled([(s,) for s in WEBHOOK_STATES], _by_one(reading.webhooks)),
        ),
        _gauge(
            "paysaga_payouts_pending",
            "Merchant payouts the bank has not answered yet, by currency.",
            ["currency"],
            _by_one(reading.payouts_pending).items(),
        ),
        _gauge(
            "paysaga_payouts_pending_oldest_seconds",
            "How long the oldest payout the bank has not answered has waited, by currency.",
            ["currency"],
            _by_one(reading.payout_waiting_seconds).items(),
        ),
        _gauge(
            "paysaga_ledger_trial_balance_minor",
            "Sum of every posting per currency, minor units: anything but 0 is a broken ledger.",
            ["currency"],
            _by_one(reading.trial_balance).items(),
        ),
    ]


def _by_one(values: Mapping[str, float]) -> dict[tuple[str, ...], float]:
    return {(label,): value for label, value in values.items()}


def _zero_filled(
    known: Iterable[tuple[str, ...]], found: Mapping[tuple[str, ...], float]
) -> list[tuple[tuple[str, ...], float]]:
    """The known label combinations at 0, with what was found (known or not) over them."""
    return list(({key: 0.0 for key in known} | dict(found)).items())


_UP_HELP = "1 when the last read of the state gauges from the database worked."
