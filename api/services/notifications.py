"""A buyer's notifications (payment succeeded, order closed, refund issued): list, mark read.

Plain functions over a session, so the route that authenticates the buyer
(`GET /v1/me/notifications`, with the caller's own id) stays a thin wrapper.
Another buyer's notification is answered exactly like a missing one (as a cursor too:
400 `cursor_invalid`, as on every list).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_
from sqlmodel import Session, col, select

from api.errors import NotFound
from api.ledger_schemas import UtcDatetime
from api.pagination import Keyset, bad_cursor, fetch_page
from db.tables import PartyNotification

MAX_PAGE = 100
_NEWEST_FIRST = Keyset((PartyNotification.created_at, PartyNotification.id))


class NotificationOut(BaseModel):
    id: str
    order_id: str
    event: str  # payment_succeeded | order_closed | refund_issued
    created_at: UtcDatetime
    read_at: UtcDatetime | None


class NotificationPage(BaseModel):
    data: list[NotificationOut]
    has_more: bool
    next_cursor: str | None


def list_buyer_notifications(
    session: Session, buyer_id: str, limit: int = 20, starting_after: str | None = None
) -> NotificationPage:
    """Newest first; pass the last id of a page as `starting_after` for the next one."""
    limit = max(1, min(limit, MAX_PAGE))
    cursor = None
    if starting_after is not None:
        cursor = _owned(session, buyer_id, starting_after)
        if cursor is None:
            raise bad_cursor(starting_after)
    query = select(PartyNotification).where(_owned_by(buyer_id))
    page = fetch_page(session, _NEWEST_FIRST.ordered(query, cursor), limit)
    return NotificationPage(
        data=[NotificationOut.model_validate(row, from_attributes=True) for row in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor(lambda notification: notification.id),
    )


def mark_read(session: Session, buyer_id: str, notification_id: str) -> NotificationOut:
    """Mark one of the buyer's notifications read, in the caller's transaction (once: a
    repeat keeps the first time)."""
    notification = _find(session, buyer_id, notification_id)
    if notification.read_at is None:
        notification.read_at = datetime.now(UTC)
        session.add(notification)
        session.flush()
    return NotificationOut.model_validate(notification, from_attributes=True)


def _owned_by(buyer_id: str) -> ColumnElement[bool]:
    return and_(
        col(PartyNotification.recipient) == "buyer",
        col(PartyNotification.recipient_id) == buyer_id,
    )


def _owned(session: Session, buyer_id: str, notification_id: str) -> PartyNotification | None:
    return session.exec(
        select(PartyNotification).where(
            col(PartyNotification.id) == notification_id, _owned_by(buyer_id)
        )
    ).first()


def _find(session: Session, buyer_id: str, notification_id: str) -> PartyNotification:
    found = _owned(session, buyer_id, notification_id)
    if found is None:
        raise NotFound("notification_not_found", f"no notification {notification_id}", "id")
    return found
