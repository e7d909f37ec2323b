"""The card gateway's settlement conversion: which presentment currencies it pays our
account in another currency, and at what rate.

A card gateway takes the buyer's currency (USD, SGD, ...) but settles a merchant account
in the currencies that account is set up to receive. The sandbox's card gateway converts
a presentment currency only when told to (`PUT /control/fx/settlement-rate`): by default
every currency settles as itself, as before. Once a currency converts, the gateway uses
its own market (`SandboxRates` with `SETTLEMENT_SEED`, which differs from both paysaga's
quotes and the wallets', and moves) on the settlement day, unless the control fixed a
rate, which tests do to make the rate land above or below the quote.

Rates are settlement units per presentment unit, cut to `RATE_PLACES` places (half even).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from domain.fx.sandbox_rates import SandboxRates
from sandbox.channel_fx import RATE_PLACES

SETTLEMENT_SEED: Final = "sandbox-card-settlement"
_QUANTUM: Final = Decimal(1).scaleb(-RATE_PLACES)


@dataclass(frozen=True)
class SettlementConversion:
    """Settle `source_currency` takings in `settle_currency`; `rate` None: the market's."""

    source_currency: str
    settle_currency: str
    rate: Decimal | None = None


class SettlementFx:
    """The card gateway's settlement currencies, set by the control API."""

    def __init__(self, seed: str = SETTLEMENT_SEED, source: str = SETTLEMENT_SEED) -> None:
        self._rates = SandboxRates(seed, source=source)
        self._conversions: dict[str, SettlementConversion] = {}

    def set(self, conversion: SettlementConversion) -> None:
        self._conversions[conversion.source_currency] = conversion

    def rates_at(self, at: datetime) -> dict[str, tuple[str, Decimal]]:
        """Each converted currency's (settlement currency, rate) at `at`."""
        return {
            source: (c.settle_currency, c.rate or self.market_rate(source, c.settle_currency, at))
            for source, c in self._conversions.items()
        }

    def market_rate(self, source: str, target: str, at: datetime) -> Decimal:
        mid = self._rates.rate(source, target, at).value
        return mid.quantize(_QUANTUM, rounding=decimal.ROUND_HALF_EVEN)
