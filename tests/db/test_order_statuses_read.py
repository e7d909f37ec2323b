"""The order status watch's read (api.order_watch.statuses_from) on both databases: the
statuses of the orders asked for, in chunks under every backend's parameter limit."""

from __future__ import annotations

from api.order_watch import CHUNK, statuses_from
from db.engine import read_session_factory
from tests.db.conftest import Shop


def test_the_statuses_of_the_orders_asked_for_and_no_others(shop: Shop) -> None:
    paid = [shop.paid_order() for _ in range(3)]
    unknown = [f"ord_unknown_{n}" for n in range(2 * CHUNK + 7)]  # three chunks
    read = statuses_from(read_session_factory(shop.engine))
    assert read([*unknown[:CHUNK], paid[0], *unknown[CHUNK:], *paid[1:]]) == {
        order_id: "awaiting_receipt" for order_id in paid
    }
    assert read([]) == {}
