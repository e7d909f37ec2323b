"""Alipay amounts: decimal strings in major units ("88.88"), converted exactly.

Alipay sends and expects `total_amount` / `refund_amount` as decimal strings in
[0.01, 100000000] of the trade's currency: yuan for a domestic trade, the price
currency (`trans_currency`) for a cross-border one, with as many decimals as that
currency has (HKD "128.00", JPY "12800"). We hold int minor units. Anything that is
not a plain decimal with at most that many places (a sign, an exponent, spaces, one
place too many, leading zeros) is refused rather than rounded: a payment amount is
never guessed.
"""

from __future__ import annotations

import re

from domain.errors import InvalidOrder
from domain.money import currency_exponent

MIN_FEN = 1
MAX_FEN = 100_000_000_00  # 100,000,000.00 yuan
MAX_MAJOR = 100_000_000  # Alipay's ceiling, in major units of any currency


class AmountFormatError(ValueError):
    pass


def _exponent(currency: str) -> int:
    try:
        return currency_exponent(currency)
    except InvalidOrder:
        raise AmountFormatError(f"no amounts in {currency!r}") from None


def major_to_minor(text: str, currency: str) -> int:
    """ "128.00" HKD -> 12800, "500" JPY -> 500; AmountFormatError for anything else."""
    exponent = _exponent(currency)
    fraction_part = rf"(?:\.([0-9]{{1,{exponent}}}))?" if exponent else "()"
    match = re.fullmatch(rf"(0|[1-9][0-9]{{0,8}}){fraction_part}", text)
    if match is None:
        raise AmountFormatError(f"not an amount in {currency}: {text!r}")
    fraction: str = (match.group(2) or "").ljust(exponent, "0")
    minor: int = int(match.group(1)) * 10**exponent + int(fraction or "0")
    if not 1 <= minor <= MAX_MAJOR * 10**exponent:
        raise AmountFormatError(f"amount out of range: {text!r} {currency}")
    return minor


def minor_to_major(amount: int, currency: str) -> str:
    """12800 HKD -> "128.00", 500 JPY -> "500"; refuses non-int and out-of-range amounts."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int, got {type(amount).__name__}")
    exponent = _exponent(currency)
    if not 1 <= amount <= MAX_MAJOR * 10**exponent:
        raise AmountFormatError(f"amount out of Alipay's range: {amount} {currency} minor units")
    if not exponent:
        return str(amount)
    whole, fraction = divmod(amount, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d}"


def yuan_to_fen(text: str) -> int:
    """ "88.88" -> 8888, "1" -> 100, "0.5" -> 50; AmountFormatError for anything else."""
    return major_to_minor(text, "CNY")


def fen_to_yuan(fen: int) -> str:
    """8888 -> "88.88", 5 -> "0.05"; refuses non-int and out-of-range amounts."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be an int, got {type(fen).__name__}")
    return minor_to_major(fen, "CNY")
