"""Pricing an order: validate its lines, apply at most one coupon, spread the discount.

Everything is integer minor units. The only rounding is the percentage coupon's
`round_half_up(total * percent_off)`; spreading the order discount over lines uses the
largest-remainder method (`allocate`), so line discounts add up to the order discount
exactly and the same input always splits the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from domain.errors import CouponRejected, InvalidOrder
from domain.money import (
    MAX_LINE_QUANTITY,
    MAX_ORDER_LINES,
    MAX_ORDER_TOTAL,
    apply_rate,
    currency_exponent,
    format_amount,
)


def _reject_float(value: Any) -> Any:
    # A float such as 0.15 is already inexact; make the caller send a string or Decimal.
    if isinstance(value, float):
        raise PydanticCustomError(
            "decimal_not_float",
            "give rates as a decimal string or Decimal, not a float",
        )
    return value


StrictAmount = Annotated[int, Field(strict=True)]
ExactDecimal = Annotated[Decimal, BeforeValidator(_reject_float)]


class OrderLine(BaseModel):
    """One SKU on an order as the shop submitted it; checked by `validate_order`, not here,
    so a bad line comes back as an `InvalidOrder` naming the field."""

    model_config = ConfigDict(frozen=True)

    sku: str
    name: str
    quantity: StrictAmount
    unit_amount: StrictAmount


class CouponKind(enum.StrEnum):
    PERCENTAGE = "percentage"
    FIXED = "fixed"
    THRESHOLD = "threshold"


class Coupon(BaseModel):
    """A discount rule. Construction refuses a coupon whose fields do not fit its kind,
    so `coupon_discount` only ever has to decide whether it applies."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(min_length=1)
    kind: CouponKind
    percent_off: ExactDecimal | None = None  # PERCENTAGE: a fraction in (0, 1]
    amount_off: StrictAmount | None = None  # FIXED and THRESHOLD: minor units, > 0
    min_total: StrictAmount | None = None  # THRESHOLD: applies when total >= min_total
    currency: str | None = None  # required for FIXED and THRESHOLD
    valid_from: AwareDatetime | None = None  # inclusive
    valid_until: AwareDatetime | None = None  # exclusive

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> Coupon:
        if self.kind is CouponKind.PERCENTAGE:
            if self.percent_off is None or not self.percent_off.is_finite():
                raise ValueError("a percentage coupon needs a finite percent_off")
            if not Decimal(0) < self.percent_off <= Decimal(1):
                raise ValueError("percent_off is a fraction in (0, 1], e.g. 0.15 for 15%")
            if self.amount_off is not None or self.min_total is not None:
                raise ValueError("a percentage coupon takes no amount_off or min_total")
        else:
            if self.amount_off is None or self.amount_off <= 0:
                raise ValueError(f"a {self.kind} coupon needs amount_off > 0")
            if self.currency is None:
                raise ValueError(f"a {self.kind} coupon needs a currency")
            if self.percent_off is not None:
                raise ValueError(f"a {self.kind} coupon takes no percent_off")
            if self.kind is CouponKind.THRESHOLD:
                if self.min_total is None or self.min_total < 0:
                    raise ValueError("a threshold coupon needs min_total >= 0")
            elif self.min_total is not None:
                raise ValueError("a fixed coupon takes no min_total; use a threshold coupon")
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_from >= self.valid_until
        ):
            raise ValueError("valid_from must be before valid_until")
        return self


class PricedLine(BaseModel):
    """A line after pricing: its total, its share of the order discount, what is owed."""

    model_config = ConfigDict(frozen=True)

    sku: str
    name: str
    quantity: StrictAmount
    unit_amount: StrictAmount
    line_total: StrictAmount  # quantity * unit_amount
    discount_amount: StrictAmount  # this line's share of the order discount
    payable_amount: StrictAmount  # line_total - discount_amount


class PricedOrder(BaseModel):
    """The priced order; line discounts and payables add up to the order's exactly."""

    model_config = ConfigDict(frozen=True)

    currency: str
    lines: tuple[PricedLine, ...]
    total_amount: StrictAmount
    discount_amount: StrictAmount
    payable_amount: StrictAmount


def validate_order(lines: Sequence[OrderLine], currency: str) -> None:
    """Refuse an order that cannot be priced, naming the first offending field.

    Checks run order-level first (lines present, not too many, currency known), then line
    by line, then the total, so the error a client sees is the most fundamental one.
    """
    if not lines:
        raise InvalidOrder("empty_order", "an order needs at least one line", "lines")
    if len(lines) > MAX_ORDER_LINES:
        raise InvalidOrder(
            "too_many_lines",
            f"an order has at most {MAX_ORDER_LINES} lines, got {len(lines)}",
            "lines",
        )
    currency_exponent(currency)
    for i, line in enumerate(lines):
        if not line.sku.strip():
            raise InvalidOrder("sku_missing", "every line needs a sku", f"lines[{i}].sku")
        if line.quantity <= 0:
            raise InvalidOrder(
                "quantity_not_positive",
                f"quantity must be at least 1, got {line.quantity}",
                f"lines[{i}].quantity",
            )
        if line.quantity > MAX_LINE_QUANTITY:
            raise InvalidOrder(
                "quantity_too_large",
                f"quantity must be at most {MAX_LINE_QUANTITY}, got {line.quantity}",
                f"lines[{i}].quantity",
            )
        if line.unit_amount < 0:
            raise InvalidOrder(
                "amount_negative",
                f"unit_amount must be 0 or more, got {line.unit_amount}",
                f"lines[{i}].unit_amount",
            )
    total = _order_total(lines)
    if total > MAX_ORDER_TOTAL:
        raise InvalidOrder(
            "total_too_large",
            f"the order total {format_amount(total, currency)} exceeds the maximum "
            f"{format_amount(MAX_ORDER_TOTAL, currency)}",
            "lines",
        )


def _order_total(lines: Sequence[OrderLine]) -> int:
    return sum(line.quantity * line.unit_amount for line in lines)


def coupon_discount(coupon: Coupon, total_amount: int, currency: str, now: datetime) -> int:
    """The discount `coupon` gives on an order of `total_amount` in `currency` at `now`.

    The window is [valid_from, valid_until). A percentage coupon rounds half up to the
    minor unit. The discount is capped at the total, so what is payable is never negative.
    Raises `CouponRejected` when the coupon does not apply; ValueError on a naive `now`
    or a negative total (caller bugs, not business refusals).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    if total_amount < 0:
        raise ValueError(f"total_amount must be >= 0, got {total_amount}")
    if coupon.valid_from is not None and now < coupon.valid_from:
        raise CouponRejected(
            "coupon_not_yet_valid",
            f"coupon {coupon.code!r} is valid from {coupon.valid_from.isoformat()}",
            "coupon_code",
        )
    if coupon.valid_until is not None and now >= coupon.valid_until:
        raise CouponRejected(
            "coupon_expired",
            f"coupon {coupon.code!r} expired at {coupon.valid_until.isoformat()}",
            "coupon_code",
        )
    if coupon.currency is not None and coupon.currency != currency:
        raise CouponRejected(
            "coupon_not_applicable",
            f"coupon {coupon.code!r} is for {coupon.currency} orders, this order is in {currency}",
            "coupon_code",
        )
    discount = _raw_discount(coupon, total_amount, currency)
    return min(discount, total_amount)


def _raw_discount(coupon: Coupon, total_amount: int, currency: str) -> int:
    # The model validator guarantees the fields each kind needs; the checks narrow types.
    if coupon.kind is CouponKind.PERCENTAGE:
        assert coupon.percent_off is not None
        return apply_rate(total_amount, coupon.percent_off)
    assert coupon.amount_off is not None
    if coupon.kind is CouponKind.THRESHOLD:
        assert coupon.min_total is not None
        if total_amount < coupon.min_total:
            raise CouponRejected(
                "coupon_not_applicable",
                f"coupon {coupon.code!r} needs an order of at least "
                f"{format_amount(coupon.min_total, currency)}",
                "coupon_code",
            )
    return coupon.amount_off


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` into integer shares proportional to `weights` (largest remainder).

    Each share starts as floor(amount * w / sum(weights)); the units left over go one each
    to the largest remainders, ties to the lowest index. The shares sum to `amount`
    exactly, each is within one unit of its exact proportion, a zero weight gets zero, and
    when amount <= sum(weights) no share exceeds its weight. Raises ValueError for a
    negative amount or weight, or a positive amount with all-zero weights.
    """
    if amount < 0:
        raise ValueError(f"amount must be >= 0, got {amount}")
    if any(w < 0 for w in weights):
        raise ValueError(f"weights must be >= 0, got {list(weights)}")
    weight_sum = sum(weights)
    if weight_sum == 0:
        if amount == 0:
            return [0] * len(weights)
        raise ValueError(f"cannot allocate {amount} over weights that sum to zero")
    shares: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        share, remainder = divmod(amount * weight, weight_sum)
        shares.append(share)
        remainders.append(remainder)
    leftover = amount - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return shares


def price_order(
    lines: Sequence[OrderLine], currency: str, coupon: Coupon | None, now: datetime
) -> PricedOrder:
    """Validate and price an order, spreading any coupon discount over lines by line total.

    A payable of zero is a valid result (a fully discounted or all-free order): it skips
    the payment channel.
    """
    validate_order(lines, currency)
    line_totals = [line.quantity * line.unit_amount for line in lines]
    total = sum(line_totals)
    discount = 0 if coupon is None else coupon_discount(coupon, total, currency, now)
    line_discounts = allocate(discount, line_totals)
    priced = tuple(
        PricedLine(
            sku=line.sku,
            name=line.name,
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            line_total=line_total,
            discount_amount=line_discount,
            payable_amount=line_total - line_discount,
        )
        for line, line_total, line_discount in zip(lines, line_totals, line_discounts, strict=True)
    )
    return PricedOrder(
        currency=currency,
        lines=priced,
        total_amount=total,
        discount_amount=discount,
        payable_amount=total - discount,
    )
