"""Splitting a captured payment between the channel, the platform and the merchant.

    channel_fee  = round_half_up(payable * channel_fee_rate)
    commission   = min(round_half_up(payable * commission_rate), payable - channel_fee)
    merchant_net = payable - channel_fee - commission

Each product is rounded half up to whole minor units, exactly (no decimal-context
rounding first). The channel takes its fee first because it deducts it before paying
out; the commission is capped so the merchant's net is never negative, and the merchant
absorbs every rounding difference, so the three parts always add up to payable exactly.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from domain.money import apply_rate, prorate
from domain.pricing import StrictAmount


class Split(BaseModel):
    """Who gets what of one payment; the three parts sum to `payable_amount`."""

    model_config = ConfigDict(frozen=True)

    payable_amount: StrictAmount
    channel_fee_amount: StrictAmount
    commission_amount: StrictAmount
    merchant_net_amount: StrictAmount


def check_rate(rate: Decimal, name: str) -> Decimal:
    """Return `rate` if it is a finite Decimal in [0, 1]; ValueError naming `name` if not.

    A float or int is a TypeError: rates are Decimals end to end, and a float has already
    lost the exact value.

    Used where rates enter (settings, merchant contracts) so a bad rate fails at start-up
    rather than mid-settlement.
    """
    if not isinstance(rate, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(rate).__name__}")
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
        raise ValueError(f"{name} must be between 0 and 1, got {rate}")
    return rate


def split_payment(
    payable_amount: int, channel_fee_rate: Decimal, commission_rate: Decimal
) -> Split:
    """Split `payable_amount` by the rule in the module docstring."""
    if payable_amount < 0:
        raise ValueError(f"payable_amount must be >= 0, got {payable_amount}")
    check_rate(channel_fee_rate, "channel_fee_rate")
    check_rate(commission_rate, "commission_rate")
    channel_fee = apply_rate(payable_amount, channel_fee_rate)
    commission = min(apply_rate(payable_amount, commission_rate), payable_amount - channel_fee)
    return Split(
        payable_amount=payable_amount,
        channel_fee_amount=channel_fee,
        commission_amount=commission,
        merchant_net_amount=payable_amount - channel_fee - commission,
    )


def split_refund(remaining: Split, amount: int) -> Split:
    """The parts of a refund of `amount`, taken in proportion from what is left of a split.

    `remaining` is the split less every earlier refund's parts. The channel fee and the
    commission shares round half up, as in `split_payment`; the commission share is capped
    so the merchant's share is never negative, and the merchant's share is the rest. Each
    part is then at most what is left of it (a share rounds to at most its whole, and the
    merchant's rest stays within its own share), and refunding all that is left returns
    exactly the remaining parts, so the parts of an order's refunds add up to the split.
    """
    if not 0 < amount <= remaining.payable_amount:
        raise ValueError(f"refund of {amount} outside 1..{remaining.payable_amount}")
    whole = remaining.payable_amount
    fee = prorate(amount, remaining.channel_fee_amount, whole)
    commission = min(prorate(amount, remaining.commission_amount, whole), amount - fee)
    return Split(
        payable_amount=amount,
        channel_fee_amount=fee,
        commission_amount=commission,
        merchant_net_amount=amount - fee - commission,
    )


def subtract(split: Split, part: Split) -> Split:
    """What is left of `split` once `part` of it is refunded."""
    return Split(
        payable_amount=split.payable_amount - part.payable_amount,
        channel_fee_amount=split.channel_fee_amount - part.channel_fee_amount,
        commission_amount=split.commission_amount - part.commission_amount,
        merchant_net_amount=split.merchant_net_amount - part.merchant_net_amount,
    )
