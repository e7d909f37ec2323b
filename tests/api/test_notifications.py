"""A buyer reads their notifications, page by page, and marks them read: on a real database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from api.errors import InvalidRequest, NotFound
from api.services.notifications import list_buyer_notifications, mark_read
from db.party_notifications import notify_party
from db.tables import PartyNotification
from tests.databases import migrated_engine
from tests.db.conftest import Shop, open_shop

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str | None,
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('notifications')}/paysaga.db"
    else:
        assert postgres_url is not None
        url = postgres_url
    engine = migrated_engine(url)  # never drop: other tests share the PostgreSQL database
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def shop(engine: Engine) -> Shop:
    return open_shop(engine)


def _new(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def _stored(shop: Shop, buyer_id: str | None, event: str, minutes: int) -> str:
    """A notification for a fresh order, made `minutes` after START; returns its id."""
    order_id = shop.paid_order()  # a notification is about an order the database has
    with Session(shop.engine) as session, session.begin():
        notify_party(session, order_id, "buyer", buyer_id, event)
        row = session.get_one(PartyNotification, f"{order_id}:buyer:{event}")
        row.created_at = START + timedelta(minutes=minutes)
        notification_id = row.id
    return notification_id


def test_a_buyer_sees_only_their_own_notifications_newest_first(engine: Engine, shop: Shop) -> None:
    buyer, someone_else = _new("usr"), _new("usr")
    paid = _stored(shop, buyer, "payment_succeeded", 1)
    closed = _stored(shop, buyer, "order_closed", 2)
    refunded = _stored(shop, buyer, "refund_issued", 3)
    _stored(shop, someone_else, "payment_succeeded", 4)
    _stored(shop, None, "payment_succeeded", 5)  # an order placed without signing in
    other_order = shop.paid_order()
    with Session(engine) as session, session.begin():
        notify_party(session, other_order, "merchant", buyer, "order_paid")  # not a buyer's

    with Session(engine) as session:
        page = list_buyer_notifications(session, buyer)
    assert [n.id for n in page.data] == [refunded, closed, paid]
    assert [n.event for n in page.data] == ["refund_issued", "order_closed", "payment_succeeded"]
    assert (page.has_more, page.next_cursor) == (False, None)
    assert all(n.read_at is None for n in page.data)


def test_pages_follow_each_other_without_gaps_or_repeats(engine: Engine, shop: Shop) -> None:
    buyer = _new("usr")
    # Five notifications, two of them made in the same instant: the id breaks the tie.
    ids = [_stored(shop, buyer, "payment_succeeded", m) for m in (1, 2, 2, 3, 4)]
    expected = [ids[4], ids[3], *sorted(ids[1:3], reverse=True), ids[0]]

    seen: list[str] = []
    cursor: str | None = None
    with Session(engine) as session:
        while True:
            page = list_buyer_notifications(session, buyer, limit=2, starting_after=cursor)
            seen += [n.id for n in page.data]
            if not page.has_more:
                break
            cursor = page.next_cursor
    assert seen == expected


def test_marking_read_keeps_the_first_time_and_only_for_the_owner(
    engine: Engine, shop: Shop
) -> None:
    buyer, someone_else = _new("usr"), _new("usr")
    notification = _stored(shop, buyer, "refund_issued", 1)

    with Session(engine) as session, session.begin():
        first = mark_read(session, buyer, notification)
    assert first.read_at is not None
    with Session(engine) as session, session.begin():
        again = mark_read(session, buyer, notification)
    assert again.read_at == first.read_at
    with Session(engine) as session:
        [listed] = list_buyer_notifications(session, buyer).data
    assert listed.read_at == first.read_at

    for reader, target in ((someone_else, notification), (buyer, "no-such-notification")):
        with Session(engine) as session, session.begin(), pytest.raises(NotFound):
            mark_read(session, reader, target)
    with Session(engine) as session, pytest.raises(InvalidRequest) as refused:  # nor a cursor
        list_buyer_notifications(session, someone_else, starting_after=notification)
    assert (refused.value.code, refused.value.param) == ("cursor_invalid", "starting_after")
