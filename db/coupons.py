"""Coupons as stored: how many orders hold one, and the pricing rule a row stands for."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session, func, select

from db.tables import Coupon, CouponRedemption
from domain import pricing


def coupon_holds(session: Session, code: str) -> int:
    """How many orders hold the coupon: reserved or consumed, not released."""
    count = session.exec(
        select(func.count())
        .select_from(CouponRedemption)
        .where(CouponRedemption.coupon_code == code, CouponRedemption.status != "released")
    ).one()
    return int(count)


def coupon_rule(row: Coupon) -> pricing.Coupon:
    """The domain's coupon for a stored one (raises ValidationError if it breaks the rules)."""
    return pricing.Coupon(
        code=row.code,
        kind=pricing.CouponKind(row.kind),
        percent_off=Decimal(row.percent_off) if row.percent_off is not None else None,
        amount_off=row.amount_off,
        min_total=row.min_total,
        currency=row.currency,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )
