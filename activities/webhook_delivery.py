"""Delivering a merchant webhook event: one signed POST per attempt, retried by Temporal.

Each attempt reads the merchant's current URL and signing secret, so a rotated
secret or a corrected URL takes effect on the next retry. Only a 2xx answer
acknowledges the event; anything else (another status, a redirect, a network
error, a timeout) is recorded on the event row and raised for Temporal to retry
with backoff. The secret is opened only here, and never logged or stored elsewhere.
Every attempt is counted by its outcome (`metrics.business`) once its row recorded it:
each retry is a new attempt, a new POST, counted as the row's `attempts` counts it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from temporalio import activity

from activities.errors import (
    WEBHOOK_NOT_ACKNOWLEDGED,
    WEBHOOK_UNDELIVERABLE,
    business_error,
    retryable_error,
)
from db.engine import SessionFactory
from db.secret_box import SecretBox
from db.tables import Merchant, WebhookEvent
from domain.webhook_events import WebhookDelivery, WebhookReceipt
from domain.webhook_signing import signed_headers
from metrics.business import BusinessMetrics

_ERROR_LENGTH = 500


@dataclass(frozen=True)
class _Target:
    """What one attempt sends, and where; `url` None: the merchant has no endpoint now."""

    event_type: str
    payload: str
    url: str | None
    secret: str | None = field(repr=False)
    delivered: bool
    attempts: int


class WebhookCalls:
    """Receives its sessions, an HTTP client (no redirects followed) and the data key's box."""

    def __init__(
        self,
        sessions: SessionFactory,
        http: httpx.AsyncClient,
        box: SecretBox,
        metrics: BusinessMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._http = http
        self._box = box
        self._metrics = metrics if metrics is not None else BusinessMetrics()

    @activity.defn
    async def deliver_webhook(self, delivery: WebhookDelivery) -> WebhookReceipt:
        """POST the event, signed now; succeed on a 2xx, raise (to be retried) otherwise."""
        event_id = delivery.event_id
        target = await asyncio.to_thread(self._target, event_id)
        if target.delivered or target.url is None:
            return WebhookReceipt(
                event_id=event_id, delivered=target.delivered, attempts=target.attempts
            )
        if target.secret is None:
            await asyncio.to_thread(self._record_attempt, event_id, "no signing secret", False)
            self._metrics.webhook_attempt("undeliverable")
            raise business_error(WEBHOOK_UNDELIVERABLE, "the merchant has no webhook secret")
        body = target.payload.encode()
        headers = signed_headers(target.secret, event_id, target.event_type, body, int(time.time()))
        status_code: int | None = None
        try:
            response = await self._http.post(target.url, content=body, headers=headers)
            status_code = response.status_code
            problem = None if response.is_success else f"answered HTTP {status_code}"
        except httpx.HTTPError as error:
            problem = f"{type(error).__name__}: {error}".rstrip(": ")
        attempts = await asyncio.to_thread(self._record_attempt, event_id, problem, True)
        self._metrics.webhook_attempt("delivered" if problem is None else "failed")
        if problem is not None:
            raise retryable_error(WEBHOOK_NOT_ACKNOWLEDGED, f"event {event_id}: {problem}")
        return WebhookReceipt(
            event_id=event_id, delivered=True, status_code=status_code, attempts=attempts
        )

    def _target(self, event_id: str) -> _Target:
        with self._sessions() as session:
            event = session.get(WebhookEvent, event_id)
            if event is None:
                raise business_error(WEBHOOK_UNDELIVERABLE, f"no webhook event {event_id}")
            merchant = session.get(Merchant, event.merchant_id)
            url = merchant.webhook_url if merchant is not None else None
            sealed = merchant.webhook_secret_ciphertext if merchant is not None else None
        return _Target(
            event_type=event.type,
            payload=event.payload,
            url=url,
            secret=self._box.open(sealed) if url and sealed else None,
            delivered=event.delivered_at is not None,
            attempts=event.attempts,
        )

    def _record_attempt(self, event_id: str, problem: str | None, sent: bool) -> int:
        """Count the attempt (if a request went out) and its outcome; returns the count."""
        with self._sessions() as session, session.begin():
            event = session.get(WebhookEvent, event_id, with_for_update=True)
            assert event is not None, event_id
            if sent:
                event.attempts += 1
            if problem is None:
                event.delivered_at = datetime.now(UTC)
                event.last_error = None
            else:
                event.last_error = problem[:_ERROR_LENGTH]
            return event.attempts
