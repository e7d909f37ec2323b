"""The worker's business counters: what the sagas' activities did, counted once each.

Activities are retried, and a local activity runs again when its worker dies before
the workflow task completes. So every count here follows the same rule: the activity
learns, inside its transaction and under the lock or idempotent write that keeps a
retry from paying, refunding or posting twice, whether *this* attempt made the change
(the status moved, the row was new); it counts only then, and only after the commit.
A retry finds the change made and counts nothing. A crash between the commit and the
count loses that one count, and the process's counters with it: never counted twice.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from channels.base import ChannelName
from domain.order_status import FINAL_STATUSES
from metrics import new_registry

CHANNELS = tuple(c.value for c in ChannelName)
PAYMENT_OUTCOMES = ("succeeded", "declined", "timeout", "cancelled", "channel_error", "closed")
REFUND_KINDS = ("requested", "compensation", "late_payment", "other")
# The payment wait's writes that refuse an order paid or ended otherwise meanwhile, and
# the compensation's statuses that refuse an order fulfilled (activities.order_records,
# set_order_status): counted at each refusal, not once, since what it shows is how long
# they keep coming.
STALE_WRITE_STEPS = ("set_order_status", "record_modification", "record_method_choice")

# Why an order ended unpaid (`Order.close_reason` for CLOSED) -> the payment's outcome.
_CLOSE_OUTCOMES = {
    "payment_timeout": "timeout",
    "payment_declined": "declined",
    "channel_unavailable": "channel_error",
}


def payment_outcome(status: str, close_reason: str | None) -> str:
    """The outcome label of a payment whose order ended unpaid with `status`."""
    if status == "cancelled":
        return "cancelled"
    return _CLOSE_OUTCOMES.get(close_reason or "", "closed")


def refund_kind(requested_by: str | None, reason: str) -> str:
    """requested (a buyer, merchant or operator asked), or the saga's own: compensation,
    late_payment. Refund reasons are free text; this keeps the label bounded."""
    if requested_by not in (None, "system"):
        return "requested"
    return reason if reason in ("compensation", "late_payment") else "other"


class BusinessMetrics:
    """Counters the worker's activities move; one instance per worker, on its registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()

        def counter(name: str, documentation: str, labels: list[str]) -> Counter:
            return Counter(name, documentation, labels, registry=self.registry)

        self._orders = counter(
            "paysaga_orders_finished", "Orders that reached a final status.", ["channel", "status"]
        )
        self._payments = counter(
            "paysaga_payments",
            "Orders' payments at their channel by outcome (zero-amount orders skip it).",
            ["channel", "outcome"],
        )
        self._paid = counter(
            "paysaga_payments_amount_minor",
            "Money buyers paid, in the currency's minor unit.",
            ["channel", "currency"],
        )
        self._refunds = counter(
            "paysaga_refunds", "Refunds that reached an outcome.", ["channel", "kind", "outcome"]
        )
        self._refunded = counter(
            "paysaga_refunds_amount_minor",
            "Money given back to buyers, in the currency's minor unit.",
            ["channel", "currency"],
        )
        self._payouts = counter(
            "paysaga_payouts", "Merchant payouts the bank decided.", ["outcome"]
        )
        self._paid_out = counter(
            "paysaga_payouts_amount_minor",
            "Money paid out to merchants, in the currency's minor unit.",
            ["currency"],
        )
        self._flagged = counter(
            "paysaga_orders_flagged_for_review", "Orders newly flagged for review.", ["channel"]
        )
        self._webhooks = counter(
            "paysaga_webhook_deliveries",
            "Merchant webhook delivery attempts by outcome.",
            ["outcome"],
        )
        self._stale_writes = counter(
            "paysaga_stale_writes_refused",
            "Writes of the payment wait (or the compensation) refused because the order was"
            " paid (or fulfilled) or ended otherwise meanwhile (the try of a lost workflow"
            " task; refusals that keep coming are a saga stuck on a bug).",
            ["step"],
        )
        self._start_at_zero()

    def _start_at_zero(self) -> None:
        """Every known label combination exists from the start, at 0: a series born at 1
        shows no increase, so the first returned payout would otherwise alert nobody."""
        for channel in CHANNELS:
            for status in FINAL_STATUSES:
                self._orders.labels(channel, status.value)
            for outcome in PAYMENT_OUTCOMES:
                self._payments.labels(channel, outcome)
            for kind in REFUND_KINDS:
                for outcome in ("succeeded", "failed"):
                    self._refunds.labels(channel, kind, outcome)
            self._flagged.labels(channel)
        for outcome in ("paid", "returned"):
            self._payouts.labels(outcome)
        for outcome in ("delivered", "failed", "undeliverable"):
            self._webhooks.labels(outcome)
        for step in STALE_WRITE_STEPS:
            self._stale_writes.labels(step)

    def order_finished(self, channel: str, status: str) -> None:
        self._orders.labels(channel, status).inc()

    def payment_succeeded(self, channel: str, currency: str, amount: int) -> None:
        self._payments.labels(channel, "succeeded").inc()
        self._paid.labels(channel, currency).inc(amount)

    def payment_failed(self, channel: str, outcome: str) -> None:
        self._payments.labels(channel, outcome).inc()

    def refund_finished(
        self, channel: str, kind: str, currency: str, amount: int, succeeded: bool
    ) -> None:
        self._refunds.labels(channel, kind, "succeeded" if succeeded else "failed").inc()
        if succeeded:
            self._refunded.labels(channel, currency).inc(amount)

    def payout_finished(self, currency: str, amount: int, paid: bool) -> None:
        self._payouts.labels("paid" if paid else "returned").inc()
        if paid:
            self._paid_out.labels(currency).inc(amount)

    def order_flagged(self, channel: str) -> None:
        self._flagged.labels(channel).inc()

    def webhook_attempt(self, outcome: str) -> None:
        self._webhooks.labels(outcome).inc()

    def stale_write_refused(self, step: str) -> None:
        self._stale_writes.labels(step).inc()
