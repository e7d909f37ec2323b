"""Reviews: a buyer reviews a completed order; anyone, signed in or not, reads a merchant's.

A review belongs under its order and is listed under its merchant, so this router has
no prefix of its own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth.caller import PUBLIC, BuyerCaller
from api.deps import ContextDep
from api.openapi_errors import error_responses
from api.schemas import ReviewCreate, ReviewOut, ReviewPage
from api.services.reviews import create_review, merchant_reviews

router = APIRouter(tags=["reviews"])


@router.post(
    "/v1/orders/{order_id}/review",
    status_code=201,
    responses=error_responses(400, 401, 403, 404, 409, 413),
)
def post_review(
    order_id: str, body: ReviewCreate, caller: BuyerCaller, context: ContextDep
) -> ReviewOut:
    """The buyer reviews their completed order once: rating 1 to 5, up to 2000 characters."""
    with context.sessions() as session, session.begin():
        return create_review(session, order_id, caller.id, body.rating, body.text)


@router.get(
    "/v1/merchants/{merchant_id}/reviews",
    dependencies=[Depends(PUBLIC)],
    responses=error_responses(400, 404),
)
def list_reviews(
    merchant_id: str,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> ReviewPage:
    """Newest first; pass the last `order_id` of a page as `starting_after` for the next one."""
    with context.reads() as session:
        return merchant_reviews(session, merchant_id, limit, starting_after)
