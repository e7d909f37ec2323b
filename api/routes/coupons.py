"""Coupons, minimal for now (operator campaigns come with accounts): create and read."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ValidationError

from api.deps import ContextDep
from api.errors import Conflict, InvalidRequest, NotFound
from api.records import now
from api.schemas import CouponCreate, CouponOut
from db.coupons import coupon_holds, coupon_rule
from db.tables import Coupon
from db.writes import insert_ignore
from domain.money import currency_exponent

router = APIRouter(prefix="/v1/coupons", tags=["coupons"])


def _out(row: Coupon, redeemed: int) -> CouponOut:
    data = row.model_dump()
    return CouponOut(**data, redeemed=redeemed)


@router.post("", status_code=201)
def create_coupon(body: CouponCreate, context: ContextDep) -> CouponOut:
    if body.currency is not None:
        currency_exponent(body.currency)  # unknown currency -> 400
    values = body.model_dump()
    values["percent_off"] = str(body.percent_off) if body.percent_off is not None else None
    row = Coupon(**values, created_at=now())
    try:
        coupon_rule(row)  # the domain's own rules: kinds, amounts, window
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidRequest("invalid_coupon", str(first.get("msg")), "kind") from None
    with context.sessions() as session, session.begin():
        if not insert_ignore(session, Coupon, row.model_dump()):
            raise Conflict("coupon_exists", f"coupon {body.code} already exists", "code")
    return _out(row, 0)


@router.get("/{code}")
def get_coupon(code: str, context: ContextDep) -> CouponOut:
    with context.sessions() as session:
        row = session.get(Coupon, code)
        if row is None:
            raise NotFound("coupon_not_found", f"no coupon {code}", "code")
        return _out(row, coupon_holds(session, code))
