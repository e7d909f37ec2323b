"""Sandbox mid rates: realistic, moving over time, and reproducible at any instant.

Each currency's rate against the pivot (USD) is its base rate from `BASE_PER_USD`
(mid rates of mid-April 2024, the date of the shipped ECB sample) moved by an offset
that wanders within ± its `amplitude_ppm`. The offset is the sum of three `LAYERS` of
"value noise": each layer pins pseudo-random values (SHA-256 of seed, currency, layer and
knot index) at knots every week, day or hour and interpolates linearly in between; the
weekly layer carries most of the band, the hourly one a little jitter. So:

- the same seed and instant always give the same rate, in any process (no `hash()`, no
  global random state, no float: the arithmetic is integers and exact Decimals);
- rates move continuously, never leave the band, and drift like a market: about a tenth of
  the band per hour at most (EUR ±3%: under 0.4% an hour), most of it over days;
- two seeds give two different markets: the sandbox channel converts at its own seed's
  rates while paysaga quotes at another's, so FX gains and losses really occur;
- cross rates are consistent: every pair is derived from the same USD table at `at`.

Pegged currencies move less (HKD trades in a 7.75-7.85 band, BHD is fixed at 0.376).
"""

from __future__ import annotations

import decimal
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Final, NamedTuple

from domain.fx.errors import RateMissing
from domain.fx.rates import Rate, cross_rate

PIVOT: Final = "USD"


class Layer(NamedTuple):
    knot_seconds: int
    share_ppm: int  # this layer's share of the currency's amplitude, in millionths


LAYERS: Final = (Layer(7 * 86_400, 800_000), Layer(86_400, 150_000), Layer(3_600, 50_000))
"""The shares add up to one million: the sum of the layers never leaves the band."""

RATE_DIGITS: Final = 6
"""Significant digits of a sandbox rate against USD, as real feeds publish them."""


class BaseRate(NamedTuple):
    per_usd: Decimal
    amplitude_ppm: int  # the most the rate strays from per_usd, in millionths


BASE_PER_USD: Final[Mapping[str, BaseRate]] = MappingProxyType(
    {
        "USD": BaseRate(Decimal(1), 0),
        "CNY": BaseRate(Decimal("7.2386"), 15_000),
        "EUR": BaseRate(Decimal("0.93844"), 30_000),
        "HKD": BaseRate(Decimal("7.8284"), 3_000),
        "JPY": BaseRate(Decimal("153.95"), 40_000),
        "GBP": BaseRate(Decimal("0.80147"), 30_000),
        "KRW": BaseRate(Decimal("1383.1"), 30_000),
        "SGD": BaseRate(Decimal("1.3605"), 20_000),
        "AUD": BaseRate(Decimal("1.5429"), 40_000),
        "CAD": BaseRate(Decimal("1.3743"), 25_000),
        "CHF": BaseRate(Decimal("0.91263"), 30_000),
        "BHD": BaseRate(Decimal("0.376"), 0),
        "KWD": BaseRate(Decimal("0.30770"), 5_000),
    }
)

_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)
# Interpolation works at 34 digits (far below a millionth of a ppm), and the result is
# published at RATE_DIGITS; both are fixed contexts, so every process computes the same.
_WORKING: Final = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)
_PUBLISHED: Final = decimal.Context(prec=RATE_DIGITS, rounding=decimal.ROUND_HALF_EVEN)


class SandboxRates:
    """A `RateSource` whose market is fixed by `seed`."""

    def __init__(self, seed: str = "paysaga", source: str = "sandbox") -> None:
        self._seed = seed
        self.source = source

    def rate(self, base: str, quote: str, at: datetime) -> Rate:
        if at.utcoffset() is None:
            raise ValueError(f"at must be timezone-aware, got {at!r}")
        for currency, param in ((base, "base"), (quote, "quote")):
            if currency not in BASE_PER_USD:
                raise RateMissing(
                    "rate_missing", f"{self.source} has no rate for {currency!r}", param
                )
        table = {currency: self.per_usd(currency, at) for currency in (base, quote)}
        return cross_rate(base, quote, table, source=self.source, as_of=at)

    def per_usd(self, currency: str, at: datetime) -> Decimal:
        """Units of `currency` one USD buys at `at` in this market."""
        base_rate = BASE_PER_USD[currency]
        offset_ppm = self._offset_ppm(currency, base_rate.amplitude_ppm, at)
        factor = _WORKING.add(1, _WORKING.divide(offset_ppm, 1_000_000))
        return _PUBLISHED.plus(_WORKING.multiply(base_rate.per_usd, factor)).normalize()

    def _offset_ppm(self, currency: str, amplitude_ppm: int, at: datetime) -> Decimal:
        """The offset at `at`: the weighted sum of each layer's interpolated knots."""
        elapsed = at - _EPOCH
        micros = (elapsed.days * 86_400 + elapsed.seconds) * 1_000_000 + elapsed.microseconds
        offset = Decimal(0)
        for layer in LAYERS:
            layer_amplitude = amplitude_ppm * layer.share_ppm // 1_000_000
            knot_micros = layer.knot_seconds * 1_000_000
            knot, into_knot = divmod(micros, knot_micros)
            before = self._knot_ppm(currency, layer, layer_amplitude, knot)
            after = self._knot_ppm(currency, layer, layer_amplitude, knot + 1)
            moved = _WORKING.divide((after - before) * into_knot, knot_micros)
            offset = _WORKING.add(offset, _WORKING.add(before, moved))
        return offset

    def _knot_ppm(self, currency: str, layer: Layer, amplitude_ppm: int, knot: int) -> int:
        """A pseudo-random offset in [-amplitude, +amplitude] for one knot of one layer."""
        if amplitude_ppm == 0:
            return 0
        key = f"{self._seed}:{currency}:{layer.knot_seconds}:{knot}"
        draw = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
        return draw % (2 * amplitude_ppm + 1) - amplitude_ppm
