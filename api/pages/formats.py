"""How the pages show money and times."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.money import CURRENCY_EXPONENTS, format_amount


def money(amount: int | None, currency: str) -> str:
    if amount is None:
        return "—"
    if currency not in CURRENCY_EXPONENTS:
        return f"{amount} {currency}"
    return format_amount(amount, currency)


def when(moment: datetime | None) -> str:
    """UTC, to the second (SQLite's datetimes come without a zone and are UTC)."""
    if moment is None:
        return "—"
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
