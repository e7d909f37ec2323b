"""Cross-border orders at creation: the rules they must pass, and the quote they are paid by.

An order whose buyer pays in another currency (`presentment_currency`) than its price
gets a quote from our mid rate (settings: the sandbox's rates, or an ECB daily file)
plus the merchant's markup: the channel collects exactly the quoted amount, the merchant
is settled the price. The quote is on offer for the order's whole payment window and a
margin (`QUOTE_MARGIN`: the saga starts after the quote is made), so every payment the
saga accepts pays a valid quote; one that arrives after the window is a late payment,
given back in full in the currency it came in, as for any order.

    400 buyer_country_not_allowed            the merchant does not sell there
    400 currency_not_allowed                 the merchant does not price in it
    400 channel_required                     a cross-border order names its channel
    400 presentment_currency_not_supported   the channel or our rates do not take it
    400 amount_over_limit                    over the per-order limit of a currency
    400 amount_too_small / unknown_currency  (domain.fx.quotes, domain.money)
    503 rate_unavailable                     our rates are stale: retry later
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Final

from api.errors import InvalidRequest, ServiceUnavailable
from api.services.records import new_id, now
from channels.base import ChannelName, takes_buyer_currency
from channels.rates.ecb import EcbRates, load_sample_reference, parse_ecb_daily
from db.tables import MerchantFxTerms
from domain.fx.errors import RateMissing, RateStale
from domain.fx.quotes import make_quote
from domain.fx.rates import RateSource
from domain.fx.sandbox_rates import SandboxRates
from domain.fx.terms import QuoteTerms
from domain.money import currency_exponent
from domain.pricing import PricedOrder
from settings import Settings

QUOTE_MARGIN: Final = timedelta(minutes=5)


@lru_cache(maxsize=4)
def rate_source(kind: str, seed: str, ecb_file: str) -> RateSource:
    """Our mid rates, as the settings name them (read once per process)."""
    if kind == "ecb":
        reference = (
            parse_ecb_daily(Path(ecb_file).read_bytes()) if ecb_file else load_sample_reference()
        )
        return EcbRates(reference)
    return SandboxRates(seed=seed)


def check_buyer_country(terms: MerchantFxTerms | None, country: str | None) -> None:
    allowed = terms.buyer_countries if terms is not None else None
    if country is None or not allowed:
        return
    if country not in allowed.split(","):
        message = f"the merchant does not sell to buyers in {country}"
        raise InvalidRequest("buyer_country_not_allowed", message, "buyer_country")


def check_price_currency(terms: MerchantFxTerms | None, currency: str) -> None:
    allowed = terms.price_currencies if terms is not None else None
    if allowed and currency not in allowed.split(","):
        message = f"the merchant does not price in {currency} (it prices in {allowed})"
        raise InvalidRequest("currency_not_allowed", message, "currency")


def quote_order(
    settings: Settings,
    terms: MerchantFxTerms | None,
    priced: PricedOrder,
    presentment_currency: str | None,
    channel: ChannelName | None,
    payment_timeout_seconds: int,
) -> QuoteTerms | None:
    """The order's quote, or None when the buyer pays in the price's currency."""
    if presentment_currency is None or presentment_currency == priced.currency:
        return None
    currency_exponent(presentment_currency)  # 400 unknown_currency
    if channel is None:
        message = "an order paid in another currency names its channel"
        raise InvalidRequest("channel_required", message, "channel")
    if not takes_buyer_currency(channel, presentment_currency):
        message = f"{channel.value} does not take {presentment_currency}"
        raise InvalidRequest("presentment_currency_not_supported", message, "presentment_currency")
    source = rate_source(settings.fx_rate_source, settings.fx_sandbox_seed, settings.fx_ecb_file)
    at = now()
    try:
        mid = source.rate(priced.currency, presentment_currency, at)
    except RateMissing as missing:
        raise InvalidRequest(
            "presentment_currency_not_supported", missing.message, "presentment_currency"
        ) from None
    except RateStale:
        message = "no current exchange rate to quote with; try again later"
        raise ServiceUnavailable("rate_unavailable", message, retry_after=60) from None
    ttl = timedelta(seconds=payment_timeout_seconds) + QUOTE_MARGIN
    markup_bps = terms.fx_markup_bps if terms is not None else 0
    quote = make_quote(new_id("quo"), priced.payable_amount, mid, markup_bps, at, ttl)
    _check_limit(settings, quote.price_currency, quote.price_amount, "lines")
    _check_limit(
        settings, quote.presentment_currency, quote.presentment_amount, "presentment_currency"
    )
    return QuoteTerms.of(quote)


def _check_limit(settings: Settings, currency: str, amount: int, param: str) -> None:
    limit = settings.fx_order_limits.get(currency)
    if limit is not None and amount > limit:
        message = f"a cross-border order may charge at most {limit} {currency} minor units"
        raise InvalidRequest("amount_over_limit", message, param)
