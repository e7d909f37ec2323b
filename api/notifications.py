"""A buyer's notifications (payment succeeded, order closed, refund issued): list, mark read.

Plain functions over a session, so the route that authenticates the buyer
(`GET /v1/me/notifications`, with the caller's own id) stays a thin wrapper.
Another buyer's notification is answered exactly like a missing one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, select

from api.errors import NotFound
from api.ledger_schemas import UtcDatetime
from db.tables import PartyNotification

MAX_PAGE = 100


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
    query = select(PartyNotification).where(_owned_by(buyer_id))
    if starting_after is not None:
        cursor = _find(session, buyer_id, starting_after)
        query = query.where(
            or_(
                col(PartyNotification.created_at) < cursor.created_at,
                and_(
                    col(PartyNotification.created_at) == cursor.created_at,
                    col(PartyNotification.id) < cursor.id,
                ),
            )
        )
    query = query.order_by(
        col(PartyNotification.created_at).desc(), col(PartyNotification.id).desc()
    )
    rows = session.exec(query.limit(limit + 1)).all()
    page = [NotificationOut.model_validate(row, from_attributes=True) for row in rows[:limit]]
    has_more = len(rows) > limit
    return NotificationPage(
        data=page, has_more=has_more, next_cursor=page[-1].id if has_more else None
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


def _find(session: Session, buyer_id: str, notification_id: str) -> PartyNotification:
    found = session.exec(
        select(PartyNotification).where(
            col(PartyNotification.id) == notification_id, _owned_by(buyer_id)
        )
    ).first()
    if found is None:
        raise NotFound("notification_not_found", f"no notification {notification_id}", "id")
    return found
