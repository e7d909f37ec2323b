"""Coupon campaigns, made by operators: create, list, disable; any signed-in caller reads one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import ValidationError
from sqlmodel import Session, select

from api.auth.caller import AnyCaller, OperatorCaller
from api.deps import ContextDep
from api.errors import Conflict, InvalidRequest, NotFound
from api.openapi_errors import error_responses
from api.pagination import Keyset, bad_cursor, fetch_page
from api.schemas import CouponCreate, CouponOut, CouponPage
from api.services.records import now
from db.coupons import HoldCounts, coupon_rule, hold_counts, locked_coupon
from db.tables import Coupon
from db.writes import insert_ignore
from domain.money import currency_exponent

router = APIRouter(prefix="/v1/coupons", tags=["coupons"])
_NEWEST_FIRST = Keyset((Coupon.created_at, Coupon.code))


def _out(row: Coupon, holds: HoldCounts) -> CouponOut:
    return CouponOut(
        **row.model_dump(),
        redeemed=holds.redeemed,
        consumed=holds.consumed,
        remaining=max(row.max_redemptions - holds.redeemed, 0),
    )


def _load(session: Session, code: str) -> Coupon:
    row = session.get(Coupon, code)
    if row is None:
        raise NotFound("coupon_not_found", f"no coupon {code}", "code")
    return row


def _read(session: Session, row: Coupon) -> CouponOut:
    return _out(row, hold_counts(session, [row.code]).get(row.code, HoldCounts()))


@router.post("", status_code=201, responses=error_responses(400, 401, 403, 409, 413))
def create_coupon(body: CouponCreate, caller: OperatorCaller, context: ContextDep) -> CouponOut:
    if body.currency is not None:
        currency_exponent(body.currency)  # unknown currency -> 400
    values = body.model_dump()
    values["percent_off"] = str(body.percent_off) if body.percent_off is not None else None
    row = Coupon(**values, created_at=now())
    try:
        coupon_rule(row)  # the domain's own rules: kinds, amounts, window
    except ValidationError as error:
        first = error.errors()[0]
        field = first.get("loc", ())[:1]
        param = str(field[0]) if field else "kind"  # a rule across fields names the kind
        raise InvalidRequest("invalid_coupon", str(first.get("msg")), param) from None
    with context.sessions() as session, session.begin():
        if not insert_ignore(session, Coupon, row.model_dump()):
            raise Conflict("coupon_exists", f"coupon {body.code} already exists", "code")
    return _out(row, HoldCounts())


@router.get("/{code}", responses=error_responses(401, 404))
def get_coupon(code: str, caller: AnyCaller, context: ContextDep) -> CouponOut:
    with context.reads() as session:
        return _read(session, _load(session, code))


@router.get("", responses=error_responses(400, 401, 403))
def list_coupons(
    caller: OperatorCaller,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> CouponPage:
    """Newest first; pass the last code of a page as `starting_after` for the next one."""
    with context.reads() as session:
        cursor = None
        if starting_after is not None:
            cursor = session.get(Coupon, starting_after)
            if cursor is None:
                raise bad_cursor(starting_after)
        page = fetch_page(session, _NEWEST_FIRST.ordered(select(Coupon), cursor), limit)
        counts = hold_counts(session, [row.code for row in page.items])
        data = [_out(row, counts.get(row.code, HoldCounts())) for row in page.items]
    return CouponPage(
        data=data, has_more=page.has_more, next_cursor=page.next_cursor(lambda row: row.code)
    )


@router.post("/{code}/disable", responses=error_responses(401, 403, 404))
def disable_coupon(code: str, caller: OperatorCaller, context: ContextDep) -> CouponOut:
    """End a campaign early: new orders are refused `coupon_disabled` from now on; orders
    that hold it keep their hold. Taken under the coupon's row lock, so no order is
    reserved after this returns. Disabling again changes nothing."""
    with context.sessions() as session, session.begin():
        row = locked_coupon(session, code)
        if row is None:
            raise NotFound("coupon_not_found", f"no coupon {code}", "code")
        if row.disabled_at is None:
            row.disabled_at = now()
        return _read(session, row)
