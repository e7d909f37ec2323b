"""Buyers review their completed orders once; anyone reads a merchant's reviews.

Orders are placed, paid at the sandbox and completed through the running stack. The rules
are exercised through `api.services.reviews.create_review` on the same database, with the order's
buyer set on its row, so that many buyers cost no sign-ins; the listing is read over HTTP.
A signed-in buyer's review over HTTP is in tests/api/test_buyer_journey.py.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from api.errors import ApiError
from api.schemas import ReviewOut
from api.services.reviews import average_rating, create_review
from db.tables import Order, Review
from tests.api.test_orders import assert_error
from tests.conftest import System
from tests.db.conftest import new_buyer
from tests.support import create_merchant, create_order, pay, wait_status

CompletedOrder = Callable[..., Awaitable[str]]


def _buyer(system: System) -> str:
    """A buyer's user row, without a sign-in (orders and reviews name real users)."""
    return new_buyer(system.engine)


def _set_buyer(system: System, order_id: str, buyer_id: str | None) -> None:
    """What sign-in will do when a buyer places the order."""
    with Session(system.engine) as session, session.begin():
        order = session.get(Order, order_id)
        assert order is not None
        order.buyer_id = buyer_id


def _review(system: System, order_id: str, buyer_id: str, rating: Any, text: Any = "") -> ReviewOut:
    with Session(system.engine) as session, session.begin():
        return create_review(session, order_id, buyer_id, rating, text)


def _refused(
    system: System, order_id: str, buyer_id: str, rating: Any = 5, text: Any = ""
) -> ApiError:
    with pytest.raises(ApiError) as refused:
        _review(system, order_id, buyer_id, rating, text)
    return refused.value


def _stored(system: System, order_id: str) -> list[Review]:
    with Session(system.engine) as session:
        return list(session.exec(select(Review).where(Review.order_id == order_id)).all())


@pytest.fixture
def completed_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> CompletedOrder:
    """Place an order, pay it at the sandbox, wait until it is completed; its id."""

    async def place(merchant_id: str, buyer_id: str | None) -> str:
        order = await create_order(api, merchant_id)
        _set_buyer(system, order["id"], buyer_id)
        await pay(sandbox, order["id"])
        await wait_status(api, order["id"], "completed")
        return str(order["id"])

    return place


# -- writing a review ----------------------------------------------------------


async def test_the_buyer_reviews_their_completed_order_once(
    api: httpx.AsyncClient, system: System, completed_order: CompletedOrder
) -> None:
    merchant_id, buyer = await create_merchant(api), _buyer(system)
    order_id = await completed_order(merchant_id, buyer)

    text = "é" * 2000  # the limit counts characters, not bytes
    review = _review(system, order_id, buyer, 4, text)
    assert (review.order_id, review.merchant_id, review.rating) == (order_id, merchant_id, 4)
    assert review.text == text

    again = _refused(system, order_id, buyer, 1, "changed my mind")
    assert (again.status_code, again.code, again.param) == (409, "review_exists", "order_id")
    [stored] = _stored(system, order_id)
    assert (stored.buyer_id, stored.rating, stored.text) == (buyer, 4, text)


async def test_another_buyers_or_an_unknown_order_is_not_found_alike(
    api: httpx.AsyncClient, system: System, completed_order: CompletedOrder
) -> None:
    merchant_id, buyer = await create_merchant(api), _buyer(system)
    order_id = await completed_order(merchant_id, buyer)
    anonymous = await completed_order(merchant_id, None)  # placed without a signed-in buyer

    for target, who in ((order_id, _buyer(system)), ("ord_unknown", buyer), (anonymous, buyer)):
        refused = _refused(system, target, who)
        assert (refused.status_code, refused.code, refused.param) == (
            404,
            "order_not_found",
            "order_id",
        )
        assert refused.message == f"no order {target}"
    assert _stored(system, order_id) == [] and _stored(system, anonymous) == []


async def test_an_order_that_is_not_completed_cannot_be_reviewed(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id, buyer = await create_merchant(api), _buyer(system)
    waiting = await create_order(api, merchant_id, payment_timeout_seconds=300)
    cancelled = await create_order(api, merchant_id, payment_timeout_seconds=300)
    assert (await api.post(f"/v1/orders/{cancelled['id']}/cancel")).status_code == 200

    for order in (waiting, cancelled):
        _set_buyer(system, order["id"], buyer)
        refused = _refused(system, order["id"], buyer)
        assert (refused.status_code, refused.code, refused.param) == (
            409,
            "order_not_reviewable",
            "order_id",
        )
        assert _stored(system, order["id"]) == []


@pytest.mark.parametrize(
    ("rating", "text", "code", "param"),
    [
        (0, "", "invalid_rating", "rating"),
        (6, "", "invalid_rating", "rating"),
        (True, "", "invalid_rating", "rating"),  # a bool is an int to Python, not a rating
        (4.0, "", "invalid_rating", "rating"),
        ("5", "", "invalid_rating", "rating"),
        (None, "", "invalid_rating", "rating"),
        (5, "x" * 2001, "text_too_long", "text"),
        (5, None, "invalid_text", "text"),
    ],
    ids=["zero", "six", "bool", "float", "string", "none", "text-too-long", "text-none"],
)
async def test_a_bad_rating_or_text_is_refused_before_anything_else(
    api: httpx.AsyncClient, system: System, rating: Any, text: Any, code: str, param: str
) -> None:
    refused = _refused(system, "ord_unknown", _buyer(system), rating, text)  # 400 before the 404
    assert (refused.status_code, refused.code, refused.param) == (400, code, param)


async def test_reviews_racing_for_one_order_store_exactly_one(
    api: httpx.AsyncClient, system: System, completed_order: CompletedOrder
) -> None:
    merchant_id, buyer = await create_merchant(api), _buyer(system)
    order_id = await completed_order(merchant_id, buyer)
    racing = 8
    barrier = threading.Barrier(racing)

    def attempt(rating: int) -> object:
        barrier.wait()
        try:
            return _review(system, order_id, buyer, rating)
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=racing) as pool:
        outcomes = list(pool.map(attempt, [1 + n % 5 for n in range(racing)]))

    [winner] = [o for o in outcomes if isinstance(o, ReviewOut)]
    losers = [o for o in outcomes if not isinstance(o, ReviewOut)]
    assert [(type(o).__name__, getattr(o, "code", o)) for o in losers] == [
        ("Conflict", "review_exists")
    ] * (racing - 1)
    [stored] = _stored(system, order_id)
    assert stored.rating == winner.rating


async def test_only_a_buyer_reviews(
    api: httpx.AsyncClient, system: System, completed_order: CompletedOrder
) -> None:
    merchant_id = await create_merchant(api)
    order_id = await completed_order(merchant_id, _buyer(system))
    response = await api.post(f"/v1/orders/{order_id}/review", json={"rating": 5, "text": "ok"})
    assert_error(response, 403, "role_not_allowed", None)  # `api` is an operator
    assert _stored(system, order_id) == []


# -- reading a merchant's reviews -------------------------------------------------


async def test_a_merchants_reviews_list_newest_first_with_their_count_and_average(
    api: httpx.AsyncClient, system: System, completed_order: CompletedOrder
) -> None:
    merchant_id, other_merchant_id = await create_merchant(api), await create_merchant(api)
    buyer = _buyer(system)
    orders = [await completed_order(merchant_id, buyer) for _ in range(3)]
    for order_id, rating in zip(orders, (5, 4, 4), strict=True):
        _review(system, order_id, buyer, rating, f"rated {rating}")
    _review(system, await completed_order(other_merchant_id, buyer), buyer, 1)

    first = await api.get(f"/v1/merchants/{merchant_id}/reviews", params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [r["order_id"] for r in page["data"]] == [orders[2], orders[1]]
    assert (page["review_count"], page["average_rating"]) == (3, "4.33")  # 13 / 3
    assert (page["has_more"], page["next_cursor"]) == (True, orders[1])
    assert set(page["data"][0]) == {"order_id", "merchant_id", "rating", "text", "created_at"}

    second = await api.get(
        f"/v1/merchants/{merchant_id}/reviews", params={"limit": 2, "starting_after": orders[1]}
    )
    assert second.status_code == 200, second.text
    rest = second.json()
    assert [(r["order_id"], r["rating"], r["text"]) for r in rest["data"]] == [
        (orders[0], 5, "rated 5")
    ]
    assert (rest["has_more"], rest["next_cursor"], rest["review_count"]) == (False, None, 3)


async def test_listing_reviews_of_a_quiet_unknown_or_badly_paged_merchant(
    api: httpx.AsyncClient,
) -> None:
    quiet = await create_merchant(api)
    none = await api.get(f"/v1/merchants/{quiet}/reviews")
    assert none.status_code == 200, none.text
    assert none.json() == {
        "data": [],
        "has_more": False,
        "next_cursor": None,
        "review_count": 0,
        "average_rating": None,
    }
    unknown = await api.get("/v1/merchants/mer_unknown/reviews")
    assert_error(unknown, 404, "merchant_not_found", "merchant_id")
    cursor = await api.get(f"/v1/merchants/{quiet}/reviews", params={"starting_after": "ord_x"})
    assert_error(cursor, 400, "cursor_invalid", "starting_after")
    too_many = await api.get(f"/v1/merchants/{quiet}/reviews", params={"limit": 101})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "limit"


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [(5, 1, "5.00"), (13, 3, "4.33"), (33, 8, "4.13"), (29, 8, "3.63"), (7, 6, "1.17")],
)
def test_the_average_rating_rounds_half_up_to_two_places(
    total: int, count: int, expected: str
) -> None:
    assert average_rating(total, count) == expected


def test_the_average_rating_is_the_exact_mean_rounded_half_up() -> None:
    assert average_rating(0, 0) is None
    for count in range(1, 201):
        for total in range(count, 5 * count + 1):
            exact = (Decimal(total) / Decimal(count)).quantize(Decimal("0.01"), ROUND_HALF_UP)
            assert average_rating(total, count) == str(exact), (total, count)
