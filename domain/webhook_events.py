"""Merchant webhook events: their types, their JSON body, and the messages of their delivery.

An event's body is made once, when the event is recorded, and sent as stored on
every attempt: a merchant that dedupes by the event id sees the same bytes each time.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class EventType(enum.StrEnum):
    ORDER_PAID = "order.paid"  # the buyer paid; the order awaits receipt (or completed)
    ORDER_CLOSED = "order.closed"  # ended unpaid: closed (timeout, decline) or cancelled
    ORDER_REFUNDED = "order.refunded"  # a refund reached the buyer (or the saga gave all back)


def event_body(
    event_id: str, event_type: EventType, created: datetime, data: Mapping[str, object]
) -> str:
    """The JSON a merchant receives: `{"id", "type", "created" (unix seconds), "data"}`."""
    body = {
        "id": event_id,
        "type": event_type.value,
        "created": int(created.timestamp()),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class WebhookRetry(_Message):
    """How a delivery is retried: doubling from `initial_ms` up to `maximum_ms` between
    attempts, with no limit on attempts, until `window_seconds` after the first."""

    initial_ms: int = Field(gt=0)
    maximum_ms: int = Field(gt=0)
    window_seconds: int = Field(gt=0)


class WebhookDelivery(_Message):
    """The input of an event's delivery workflow and of each delivery attempt."""

    event_id: str
    retry: WebhookRetry
    # Sent again on a person's ask (the dashboard's Resend): an event already acknowledged
    # goes out once more, with its id and body; otherwise it is not sent twice.
    resend: bool = False


class WebhookReceipt(_Message):
    """How a delivery ended: acknowledged, or not sent because the merchant has no URL."""

    event_id: str
    delivered: bool
    status_code: int | None = None
    attempts: int = 0
