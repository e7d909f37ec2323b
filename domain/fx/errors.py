"""Errors of the FX domain: rates, quotes and quoted refunds.

    DomainError (domain.errors)   never retryable; `code`, `message`, `param`
    ├── RateUnavailable           no rate for this pair at this instant
    │   ├── RateMissing           a source does not serve the currency at all
    │   └── RateStale             the source's rates are too old (or not yet published)
    ├── RateFileInvalid           a reference-rate file is malformed, hostile or too large
    ├── QuoteExpired              a quote is used outside [created_at, expires_at)
    └── QuotedRefundRefused       a refund would return more than the quoted order paid

Retrying the same call cannot help: a stale table stays stale until someone loads a newer
one, and the integration re-quotes or refuses rather than waiting.
"""

from __future__ import annotations

from domain.errors import DomainError


class RateUnavailable(DomainError):
    """No usable rate for the asked pair at the asked instant."""


class RateMissing(RateUnavailable):
    """The source does not publish one of the two currencies."""


class RateStale(RateUnavailable):
    """The source's newest rates are older than allowed, or newer than the instant asked."""


class RateFileInvalid(DomainError):
    """A reference-rate file cannot be trusted: malformed, hostile (DTD, entities) or too big."""


class QuoteExpired(DomainError):
    """The quote's price is no longer (or not yet) on offer at this instant."""


class QuotedRefundRefused(DomainError):
    """The refund asked exceeds what remains refundable on the quoted order."""
