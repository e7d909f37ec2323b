"""Delivering a merchant webhook event: one signed POST per attempt, retried by Temporal.

Each attempt reads the merchant's current URL and signing secret, so a rotated
secret or a corrected URL takes effect on the next retry. Only a 2xx answer
acknowledges the event; anything else (another status, a redirect, a network
error, a timeout) is recorded on the event row and raised for Temporal to retry
with backoff. The secret is opened only here, and never logged or stored elsewhere.
Every attempt is counted by its outcome (`metrics.business`) once its row recorded it:
each retry is a new attempt, a new POST, counted as the row's `attempts` counts it.

Before anything is sent, the URL's name is resolved and every address checked
(`activities.webhook_targets`), and the POST goes to a checked address. A URL that
leads into our own network (loopback, private, metadata, ...) is refused for good:
the row keeps `refused: <why>`, nothing is sent, and the delivery is not retried.
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
from activities.webhook_targets import TargetRefused, WebhookTargets, pinned_request
from db.engine import SessionFactory
from db.secret_box import SecretBox
from db.tables import Merchant, WebhookEvent
from domain.webhook_events import WebhookDelivery, WebhookReceipt
from domain.webhook_signing import signed_headers
from domain.webhook_targets import IPAddress
from metrics.business import BusinessMetrics

_ERROR_LENGTH = 500
# A name with several addresses: the next is tried only if the connection was refused
# (nothing was sent), and no more than this many, within the activity's 30 s.
_ADDRESSES_TRIED = 2


def _error_text(error: httpx.HTTPError) -> str:
    return f"{type(error).__name__}: {error}".rstrip(": ")


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
    """Receives its sessions, an HTTP client (no redirects followed), the data key's box,
    and the address policy (`targets`; by default public https endpoints only)."""

    def __init__(
        self,
        sessions: SessionFactory,
        http: httpx.AsyncClient,
        box: SecretBox,
        metrics: BusinessMetrics | None = None,
        targets: WebhookTargets | None = None,
    ) -> None:
        self._sessions = sessions
        self._http = http
        self._box = box
        self._metrics = metrics if metrics is not None else BusinessMetrics()
        self._targets = targets if targets is not None else WebhookTargets()

    @activity.defn
    async def deliver_webhook(self, delivery: WebhookDelivery) -> WebhookReceipt:
        """POST the event, signed now; succeed on a 2xx, raise (to be retried) otherwise."""
        event_id = delivery.event_id
        target = await asyncio.to_thread(self._target, event_id)
        if (target.delivered and not delivery.resend) or target.url is None:
            return WebhookReceipt(
                event_id=event_id, delivered=target.delivered, attempts=target.attempts
            )
        if target.secret is None:
            await asyncio.to_thread(self._record_attempt, event_id, "no signing secret", False)
            self._metrics.webhook_attempt("undeliverable")
            raise business_error(WEBHOOK_UNDELIVERABLE, "the merchant has no webhook secret")
        addresses = await self._checked_addresses(event_id, target.url)
        status_code, problem = await self._post(target, event_id, addresses)
        attempts = await asyncio.to_thread(self._record_attempt, event_id, problem, True)
        self._metrics.webhook_attempt("delivered" if problem is None else "failed")
        if problem is not None:
            raise retryable_error(WEBHOOK_NOT_ACKNOWLEDGED, f"event {event_id}: {problem}")
        return WebhookReceipt(
            event_id=event_id, delivered=True, status_code=status_code, attempts=attempts
        )

    async def _checked_addresses(self, event_id: str, url: str) -> list[IPAddress]:
        """Where this attempt may connect; a refusal is recorded and raised for good."""
        try:
            return await self._targets.addresses(url)
        except TargetRefused as refused:
            # The merchant's URL leads into our network: never sent, never retried.
            await asyncio.to_thread(self._record_attempt, event_id, f"refused: {refused}", False)
            self._metrics.webhook_attempt("undeliverable")
            raise business_error(WEBHOOK_UNDELIVERABLE, f"event {event_id}: {refused}") from None
        except OSError as error:  # the name does not resolve (now): retried like a timeout
            await asyncio.to_thread(self._record_attempt, event_id, f"DNS: {error}", False)
            self._metrics.webhook_attempt("failed")
            raise retryable_error(WEBHOOK_NOT_ACKNOWLEDGED, f"event {event_id}: {error}") from None

    async def _post(
        self, target: _Target, event_id: str, addresses: list[IPAddress]
    ) -> tuple[int | None, str | None]:
        """One signed POST, to the first checked address that takes a connection; returns
        the status (if answered) and what went wrong (None: acknowledged)."""
        assert target.url is not None and target.secret is not None
        body = target.payload.encode()
        headers = signed_headers(target.secret, event_id, target.event_type, body, int(time.time()))
        problem = "no address"
        for address in addresses[:_ADDRESSES_TRIED]:
            request = pinned_request(self._http, target.url, address, body, headers)
            try:
                response = await self._http.send(request, follow_redirects=False)
            except httpx.ConnectError as error:  # nothing sent: the next address may answer
                problem = _error_text(error)
                continue
            except httpx.HTTPError as error:
                return None, _error_text(error)
            ok = response.is_success
            return response.status_code, None if ok else f"answered HTTP {response.status_code}"
        return None, problem

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
