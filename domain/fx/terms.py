"""A quote as a message: what the API hands the saga and the database stores (pure).

`Quote` (domain.fx.quotes) is the computation's value; `QuoteTerms` is the same numbers
as one frozen model that travels in the saga's input and round-trips through JSON and
the `order_quotes` row without losing a digit (Decimals, never floats).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from domain.fx.quotes import Quote
from domain.fx.rates import Rate


class QuoteTerms(BaseModel):
    model_config = ConfigDict(frozen=True)

    quote_id: str
    price_amount: int
    price_currency: str
    presentment_amount: int
    presentment_currency: str
    mid_rate: Decimal
    customer_rate: Decimal
    markup_bps: int
    markup_amount: int
    mid_residual: Decimal
    rate_source: str
    rate_as_of: datetime
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, quote: Quote) -> QuoteTerms:
        return cls(
            quote_id=quote.quote_id,
            price_amount=quote.price_amount,
            price_currency=quote.price_currency,
            presentment_amount=quote.presentment_amount,
            presentment_currency=quote.presentment_currency,
            mid_rate=quote.mid_rate.value,
            customer_rate=quote.customer_rate,
            markup_bps=quote.markup_bps,
            markup_amount=quote.markup_revenue,
            mid_residual=quote.mid_residual,
            rate_source=quote.mid_rate.source,
            rate_as_of=quote.mid_rate.as_of,
            created_at=quote.created_at,
            expires_at=quote.expires_at,
        )

    def quote(self) -> Quote:
        rate = Rate(
            self.price_currency,
            self.presentment_currency,
            self.mid_rate,
            self.rate_source,
            self.rate_as_of,
        )
        return Quote(
            quote_id=self.quote_id,
            price_amount=self.price_amount,
            price_currency=self.price_currency,
            presentment_currency=self.presentment_currency,
            mid_rate=rate,
            markup_bps=self.markup_bps,
            customer_rate=self.customer_rate,
            presentment_amount=self.presentment_amount,
            mid_presentment_amount=self.presentment_amount - self.markup_amount,
            markup_revenue=self.markup_amount,
            mid_residual=self.mid_residual,
            created_at=self.created_at,
            expires_at=self.expires_at,
        )
