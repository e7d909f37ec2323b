"""The wallets' own exchange rate: how the sandbox's Alipay and WeChat Pay charge CNY.

A Chinese buyer of a price in HKD, EUR or USD pays CNY at the channel's rate, not at
ours: the sandbox's channels quote from their own market (`SandboxRates` with the seed
`CHANNEL_SEED`; paysaga's quotes use another), so the two disagree and move apart over
time, and FX gains and losses really occur. The rate is cut to `RATE_PLACES` decimal
places (half even), the precision WeChat Pay reports (`exchange_rate.rate` is the rate
times 10^8); Alipay reports the same figure as `trans_pay_rate`.

The buyer's amount follows paysaga's one rounding rule (`domain.fx.conversion.convert`:
exact product, then the nearest CNY fen, halves away from zero), so a test can recompute
it exactly from the reported rate. A payment's charge is fixed when the channel creates
it (the cashier shows it; the buyer pays what was shown); a refund is converted back at
the rate of the moment it is made, as the wallets do.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from channels.base import PAYER_CURRENCY
from domain.fx.conversion import convert
from domain.fx.sandbox_rates import SandboxRates

CHANNEL_SEED: Final = "sandbox-wallets"
RATE_PLACES: Final = 8
_QUANTUM: Final = Decimal(1).scaleb(-RATE_PLACES)


@dataclass(frozen=True)
class Charge:
    """`payer_amount` of `payer_currency` for a price, at `rate` payer units per price unit."""

    payer_amount: int
    payer_currency: str
    rate: Decimal


def _now() -> datetime:
    return datetime.now(UTC)


class ChannelFx:
    """The wallets' market; `clock` says when a conversion happens."""

    def __init__(self, seed: str = CHANNEL_SEED, clock: Callable[[], datetime] = _now) -> None:
        self._rates = SandboxRates(seed, source="sandbox-wallets")
        self._clock = clock

    def rate(self, currency: str, at: datetime) -> Decimal:
        """CNY per one unit of `currency` at `at`, to `RATE_PLACES` places."""
        mid = self._rates.rate(currency, PAYER_CURRENCY, at).value
        return mid.quantize(_QUANTUM, rounding=decimal.ROUND_HALF_EVEN)

    def charge(self, amount: int, currency: str) -> Charge:
        """What the buyer pays in CNY for `amount` of `currency`, now."""
        rate = self.rate(currency, self._clock())
        converted = convert(amount, currency, PAYER_CURRENCY, rate)
        return Charge(converted.target_amount, PAYER_CURRENCY, rate)
