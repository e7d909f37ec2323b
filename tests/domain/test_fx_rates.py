"""Rates: the Rate value and the sandbox's moving, reproducible market."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidOrder
from domain.fx.errors import RateMissing
from domain.fx.rates import Rate
from domain.fx.sandbox_rates import BASE_PER_USD, SandboxRates

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
QUOTED = ["CNY", "USD", "EUR", "HKD", "JPY", "GBP"]

instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
currencies = st.sampled_from(sorted(BASE_PER_USD))


def test_a_rate_is_a_positive_decimal_with_its_source_and_instant() -> None:
    rate = Rate("EUR", "USD", Decimal("1.0656"), "ecb:2024-04-15", NOW)
    assert rate.inverse().value == Decimal("0.938438438438")
    assert (rate.inverse().base, rate.inverse().quote) == ("USD", "EUR")
    with pytest.raises(TypeError):
        Rate("EUR", "USD", 1.0656, "ecb", NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Rate("EUR", "USD", Decimal(0), "ecb", NOW)
    with pytest.raises(ValueError):
        Rate("EUR", "USD", Decimal("1.0656"), "ecb", datetime(2026, 11, 30))  # naive
    with pytest.raises(ValueError):
        Rate("EUR", "USD", Decimal("1.0656"), "", NOW)
    with pytest.raises(InvalidOrder):
        Rate("EUR", "XAU", Decimal("0.0005"), "ecb", NOW)


@given(instants, currencies, currencies)
def test_the_sandbox_gives_the_same_rate_for_the_same_instant_in_any_instance(at, base, quote):
    first = SandboxRates(seed="s1").rate(base, quote, at)
    assert first == SandboxRates(seed="s1").rate(base, quote, at)
    assert first.source == "sandbox"
    assert first.as_of == at


@given(instants, currencies)
def test_sandbox_rates_stay_within_their_band_around_the_base_table(at, currency):
    base = BASE_PER_USD[currency]
    per_usd = SandboxRates().rate("USD", currency, at).value
    band = base.per_usd * base.amplitude_ppm / 1_000_000
    assert abs(per_usd - base.per_usd) <= band + base.per_usd * Decimal("1e-5")


@given(instants, currencies, currencies, currencies)
def test_sandbox_cross_rates_agree_through_any_currency(at, a, b, c):
    market = SandboxRates()
    direct = market.rate(a, c, at).value
    through_b = market.rate(a, b, at).value * market.rate(b, c, at).value
    assert abs(through_b / direct - 1) < Decimal("1e-10")


def test_sandbox_rates_move_over_time_and_differ_between_markets() -> None:
    ours, channels = SandboxRates(seed="paysaga"), SandboxRates(seed="sandbox-channel")
    for currency in ("CNY", "EUR", "JPY", "GBP"):
        now = ours.rate("USD", currency, NOW).value
        next_day = ours.rate("USD", currency, NOW + timedelta(days=1)).value
        assert now != next_day
        assert abs(next_day / now - 1) < Decimal("0.03")  # a market, not noise
        assert channels.rate("USD", currency, NOW).value != now
    # A minute moves a rate by very little: the path is continuous.
    minute_later = ours.rate("USD", "EUR", NOW + timedelta(minutes=1)).value
    assert abs(minute_later / ours.rate("USD", "EUR", NOW).value - 1) < Decimal("0.0005")


def test_the_sandbox_quotes_every_currency_the_issue_names() -> None:
    market = SandboxRates()
    for base in QUOTED:
        for quote in QUOTED:
            assert market.rate(base, quote, NOW).value > 0
    assert market.rate("USD", "BHD", NOW).value == Decimal("0.376")  # pegged


def test_the_sandbox_refuses_a_currency_it_does_not_serve_and_a_naive_instant() -> None:
    with pytest.raises(RateMissing) as missing:
        SandboxRates().rate("USD", "XAU", NOW)
    assert (missing.value.code, missing.value.param) == ("rate_missing", "quote")
    with pytest.raises(ValueError):
        SandboxRates().rate("USD", "CNY", datetime(2026, 11, 30))
