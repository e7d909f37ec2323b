"""Amounts for people: minor units to a decimal string, with integer arithmetic only."""

from __future__ import annotations

# Currencies whose minor unit is not a hundredth (ISO 4217). Everything else has 2 decimals.
_DECIMALS = {"JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3}


def currency_decimals(currency: str) -> int:
    return _DECIMALS.get(currency.upper(), 2)


def format_amount(amount: int, currency: str) -> str:
    """`format_amount(1234, "USD") == "12.34 USD"`; `format_amount(500, "JPY") == "500 JPY"`."""
    decimals = currency_decimals(currency)
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**decimals)
    fraction = f".{minor:0{decimals}d}" if decimals else ""
    return f"{sign}{major:,}{fraction} {currency}"
