"""Who holds a coupon, and whether it can take one more hold.

A hold is an order's `CouponRedemption` that is reserved or consumed; a released one
frees its slot. The same rules answer twice: early and unlocked in the API (so most
refusals come back as a clear 400 before anything starts), and authoritatively in the
saga's `record_order` under the coupon's row lock (`locked_coupon`), where concurrent
orders take turns and the counts cannot change between the check and the insert.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, col, func, select

from db.tables import Coupon, CouponRedemption, Order
from domain import pricing
from domain.errors import CouponRejected

_HOLDING = ("reserved", "consumed")


@dataclass(frozen=True)
class HoldCounts:
    """A coupon's holds by status: reserved (orders awaiting payment) and consumed (paid)."""

    reserved: int = 0
    consumed: int = 0

    @property
    def redeemed(self) -> int:
        return self.reserved + self.consumed


def locked_coupon(session: Session, code: str) -> Coupon | None:
    """The coupon row under `SELECT ... FOR UPDATE`: holds of it are taken one at a time."""
    return session.exec(select(Coupon).where(Coupon.code == code).with_for_update()).first()


def coupon_holds(session: Session, code: str) -> int:
    """How many orders hold the coupon (reserved or consumed, not released)."""
    return hold_counts(session, [code]).get(code, HoldCounts()).redeemed


def hold_counts(session: Session, codes: Collection[str]) -> dict[str, HoldCounts]:
    """Reserved and consumed holds of each coupon in `codes`, in one query."""
    if not codes:
        return {}
    rows = session.exec(
        select(CouponRedemption.coupon_code, CouponRedemption.status, func.count())
        .where(col(CouponRedemption.coupon_code).in_(codes))
        .where(col(CouponRedemption.status).in_(_HOLDING))
        .group_by(col(CouponRedemption.coupon_code), col(CouponRedemption.status))
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for code, status, count in rows:
        counts.setdefault(code, {})[status] = int(count)
    return {code: HoldCounts(**by_status) for code, by_status in counts.items()}


def buyer_holds(session: Session, code: str, buyer_id: str) -> int:
    """How many of the buyer's orders hold the coupon."""
    count = session.exec(
        select(func.count())
        .select_from(CouponRedemption)
        .where(
            CouponRedemption.coupon_code == code,
            CouponRedemption.buyer_id == buyer_id,
            col(CouponRedemption.status).in_(_HOLDING),
        )
    ).one()
    return int(count)


def check_hold_allowed(session: Session, coupon: Coupon, buyer_id: str | None) -> None:
    """Raise `CouponRejected` when `coupon` cannot take one more hold for `buyer_id`.

    Disabled by an operator, its total quantity held, or (for an order placed by a
    signed-in buyer) that buyer's per-buyer limit held. Orders without a buyer count
    towards the total only. The validity window and the currency are pricing's to judge
    (`domain.pricing.coupon_discount`). Exact only under `locked_coupon`.
    """
    param = "coupon_code"
    if coupon.disabled_at is not None:
        raise CouponRejected(
            "coupon_disabled",
            f"coupon {coupon.code} was disabled at {coupon.disabled_at.isoformat()}",
            param,
        )
    if coupon_holds(session, coupon.code) >= coupon.max_redemptions:
        raise CouponRejected("coupon_already_used", f"coupon {coupon.code} is used up", param)
    if (
        buyer_id is not None
        and coupon.per_buyer_limit is not None
        and buyer_holds(session, coupon.code, buyer_id) >= coupon.per_buyer_limit
    ):
        raise CouponRejected(
            "coupon_limit_reached",
            f"coupon {coupon.code} can be used {coupon.per_buyer_limit} time(s) per buyer",
            param,
        )


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


def reprice(
    session: Session, order: Order, lines: Sequence[pricing.OrderLine], now: datetime
) -> pricing.PricedOrder:
    """An order's new lines priced with its coupon checked again (the total, the window);
    the order already holds the coupon, so its redemption limits are not counted again."""
    coupon = None
    if order.coupon_code is not None:
        row = session.get(Coupon, order.coupon_code)
        if row is None:
            message = f"coupon {order.coupon_code} no longer exists"
            raise CouponRejected("coupon_not_found", message, "coupon_code")
        coupon = coupon_rule(row)
    return pricing.price_order(lines, order.currency, coupon, now)
