"""Search attributes ops filter orders by in the Temporal UI (registered at server start)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
MERCHANT_ID = SearchAttributeKey.for_keyword("MerchantId")
PAYMENT_CHANNEL = SearchAttributeKey.for_keyword("PaymentChannel")
NEEDS_REVIEW = SearchAttributeKey.for_bool("NeedsReview")
# Reconciliation runs (workflows.reconciliation): which channel-day, how many exceptions.
RECON_CHANNEL = SearchAttributeKey.for_keyword("ReconChannel")
RECON_DAY = SearchAttributeKey.for_keyword("ReconDay")
RECON_EXCEPTIONS = SearchAttributeKey.for_int("ReconExceptions")

# name -> type, as `temporal server start-dev --search-attribute NAME=TYPE` wants them.
REGISTRATION = {
    ORDER_STATUS.name: "Keyword",
    MERCHANT_ID.name: "Keyword",
    PAYMENT_CHANNEL.name: "Keyword",
    NEEDS_REVIEW.name: "Bool",
    RECON_CHANNEL.name: "Keyword",
    RECON_DAY.name: "Keyword",
    RECON_EXCEPTIONS.name: "Int",
}
