"""Reviews: a buyer reviews a completed order of theirs once; a merchant's are listed.

The functions take the buyer's id explicitly: the route passes the signed-in buyer's.

A merchant's average rating is the exact mean of its ratings rounded half up to two
decimal places (13/3 -> "4.33", 33/8 = 4.125 -> "4.13"), computed in integers so no
float or intermediate rounding touches it, and given as a decimal string.
"""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session, func, select

from api.errors import Conflict, InvalidRequest, NotFound
from api.pagination import Keyset, bad_cursor, fetch_page
from api.schemas import ReviewOut, ReviewPage
from api.services.records import now
from db.tables import Merchant, Order, Review
from db.writes import insert_ignore
from domain.order_status import OrderStatus

MAX_RATING = 5
MAX_TEXT_LENGTH = 2000
_NEWEST_FIRST = Keyset((Review.created_at, Review.order_id))


def create_review(
    session: Session, order_id: str, buyer_id: str, rating: object, text: object
) -> ReviewOut:
    """Store the buyer's review of their completed order, in the caller's transaction.

    Refuses: a rating that is not a whole number 1..5 or a text over 2000 characters
    (400); an order that does not exist or is not the buyer's (404, alike, so nobody
    learns of another's orders); an order not completed (409 `order_not_reviewable`); a
    second review (409 `review_exists`, also when two race: the order id is the key).
    """
    if type(rating) is not int or not 1 <= rating <= MAX_RATING:
        raise InvalidRequest("invalid_rating", "rating is a whole number from 1 to 5", "rating")
    if not isinstance(text, str):
        raise InvalidRequest("invalid_text", "text is a string", "text")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidRequest(
            "text_too_long", f"text has at most {MAX_TEXT_LENGTH} characters", "text"
        )
    order = session.get(Order, order_id)
    if order is None or order.buyer_id is None or order.buyer_id != buyer_id:
        raise NotFound("order_not_found", f"no order {order_id}", "order_id")
    if order.status != OrderStatus.COMPLETED:
        raise Conflict(
            "order_not_reviewable",
            f"the order is {order.status}; only completed orders can be reviewed",
            "order_id",
        )
    review = Review(
        order_id=order.id,
        merchant_id=order.merchant_id,
        buyer_id=buyer_id,
        rating=rating,
        text=text,
        created_at=now(),
    )
    if not insert_ignore(session, Review, review.model_dump()):
        raise Conflict("review_exists", f"order {order_id} has been reviewed already", "order_id")
    return _out(review)


def merchant_reviews(
    session: Session, merchant_id: str, limit: int, starting_after: str | None
) -> ReviewPage:
    """A page of the merchant's reviews, newest first, with its count and average rating.

    `starting_after` is the order id of the last review of the previous page.
    """
    if session.get(Merchant, merchant_id) is None:
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", "merchant_id")
    count, total = session.exec(
        select(func.count(), func.coalesce(func.sum(Review.rating), 0)).where(
            Review.merchant_id == merchant_id
        )
    ).one()
    cursor = None
    if starting_after is not None:
        cursor = session.get(Review, starting_after)
        if cursor is None or cursor.merchant_id != merchant_id:
            raise bad_cursor(starting_after)
    query = select(Review).where(Review.merchant_id == merchant_id)
    page = fetch_page(session, _NEWEST_FIRST.ordered(query, cursor), limit)
    return ReviewPage(
        data=[_out(row) for row in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor(lambda review: review.order_id),
        review_count=int(count),
        average_rating=average_rating(int(total), int(count)),
    )


def average_rating(total: int, count: int) -> str | None:
    """`total / count` rounded half up to two places, exactly; None for no reviews."""
    if count == 0:
        return None
    # Half up for a positive mean: floor(100 * total / count + 1/2), all in integers.
    hundredths = (200 * total + count) // (2 * count)
    return str(Decimal(hundredths).scaleb(-2))


def _out(review: Review) -> ReviewOut:
    return ReviewOut(
        order_id=review.order_id,
        merchant_id=review.merchant_id,
        rating=review.rating,
        text=review.text,
        created_at=review.created_at,
    )
