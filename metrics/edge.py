"""The API's own metrics: request latency by route template, channel notifications, and
requests waiting for an order's status to change.

Counted per HTTP request, which is the event itself: a channel that sends the same
notification again makes a second delivery, and it is counted as one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrics import new_registry
from metrics.business import CHANNELS

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Channels notify at once, then retry for a day (Alipay 4m, 10m, ..., 15h).
_DELAY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 4 * 3600, 24 * 3600)
WAIT_OUTCOMES = (
    "moved",
    "unchanged",
    "full",
    "caller_full",
    "gone",
)  # api.order_waits: status-change's and the checkout's waits
UNMATCHED_ROUTE = "unmatched"  # a path no route serves: never the raw path (unbounded)
# Why a channel notification was refused: the `reason` label (api.routes.notify), a fixed set.
REFUSAL_REASONS = (
    "unknown_channel",  # no such channel in the path
    "bad_signature",  # missing, malformed or not matching
    "stale_timestamp",  # signed, but outside the tolerance (a replay, or a skewed clock)
    "malformed",  # verified, but a body we cannot read
    "wrong_account",  # for another app, seller or mchid
    "unknown_order",  # names no order of ours
    "wrong_channel",  # the order was placed on another channel
    "unknown_attempt",  # a payment attempt the order never made
    "amount_mismatch",  # amount or currency differ from the order's
    "merchant_mismatch",  # the pass-back merchant differs from the order's
)


class ApiMetrics:
    """One per app, on its own registry (the app serves it at /metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        self._requests = Histogram(
            "paysaga_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and status code.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._notifications = Counter(
            "paysaga_channel_notifications",
            "Channel notifications by outcome (accepted, ignored, refused, failed) and "
            "refusal reason (none unless refused).",
            ["channel", "outcome", "reason"],
            registry=self.registry,
        )
        self._delay = Histogram(
            "paysaga_payment_notification_delay_seconds",
            "From the payment at the channel (its own time) to our accepting its notification.",
            ["channel"],
            buckets=_DELAY_BUCKETS,
            registry=self.registry,
        )
        self._order_waits = Counter(
            "paysaga_order_status_waits",
            "Requests that waited for an order's status to change, by outcome: moved, "
            "unchanged (their timeout ended first), full (refused: as many waiting as the "
            "API lets wait), caller_full (refused: as many of the caller's waiting as one "
            "caller may hold), gone (the client left mid-wait).",
            ["outcome"],
            registry=self.registry,
        )
        self._order_waiters = Gauge(
            "paysaga_order_status_waiters",
            "Requests waiting now for an order's status to change.",
            registry=self.registry,
        )
        for outcome in WAIT_OUTCOMES:
            self._order_waits.labels(outcome)
        for channel in CHANNELS:  # at 0 from the start: see metrics.business
            for outcome in ("accepted", "ignored", "failed"):
                self._notifications.labels(channel, outcome, "none")
            for reason in REFUSAL_REASONS[1:]:
                self._notifications.labels(channel, "refused", reason)
        self._notifications.labels("unknown", "refused", "unknown_channel")

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, str(status)).observe(seconds)

    def notification(self, channel: str, outcome: str, reason: str = "none") -> None:
        self._notifications.labels(channel, outcome, reason).inc()

    def order_wait(self, outcome: str) -> None:
        self._order_waits.labels(outcome).inc()

    def count_order_waiters(self, waiting: Callable[[], int]) -> None:
        self._order_waiters.set_function(waiting)

    def payment_notified(self, channel: str, paid_at: datetime, accepted_at: datetime) -> None:
        seconds = (accepted_at - paid_at.astimezone(UTC)).total_seconds()
        self._delay.labels(channel).observe(max(seconds, 0.0))  # clocks differ a little


class HttpMetrics:
    """ASGI middleware timing every request; the route is the template the router matched
    (`/v1/orders/{order_id}`), read after the app ran."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the answer started is answered 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or UNMATCHED_ROUTE
            self.metrics.request(scope["method"], template, status, time.perf_counter() - started)
