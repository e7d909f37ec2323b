"""How many orders hold a coupon: reserved or consumed, not released."""

from __future__ import annotations

from sqlmodel import Session, func, select

from db.tables import CouponRedemption


def coupon_holds(session: Session, code: str) -> int:
    count = session.exec(
        select(func.count())
        .select_from(CouponRedemption)
        .where(CouponRedemption.coupon_code == code, CouponRedemption.status != "released")
    ).one()
    return int(count)
