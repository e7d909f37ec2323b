"""Foreign exchange: rates, exact conversion, quotes and quoted refunds (pure).

    rates.py          Rate, the RateSource protocol, exact Decimal arithmetic, cross rates
    sandbox_rates.py  SandboxRates: moving, reproducible mid rates for the sandbox and tests
    (channels.rates.ecb: the ECB's daily reference-rate XML, a RateSource read from outside)
    conversion.py     convert(): whole minor units + exact residual; the rounding rule
    quotes.py         make_quote(), validity, refund_quoted()
    errors.py         the error tree

Rounding rule (one, everywhere): convert exactly, then round to the target currency's
minor unit, halves away from zero; the difference is kept exactly as the conversion's
`residual` and belongs to the FX rounding account. Details in `conversion`.

The books (what the integration will post; these kinds are proposed, not yet in
`domain.ledger.AccountKind`, because migration 0003's ck_accounts_kind lists the kinds and
a new one needs a migration):

    fx_position:platform:{currency}        one per currency; the bridge of every
                                           cross-currency movement, flat after settlement
    fx_markup_revenue:platform:{currency}  the quote's markup, platform revenue
    fx_gain_loss:platform:{currency}       realised gain (credit) or loss (debit): quoted
                                           rate vs the rate the channel settled at
    fx_rounding:platform:{currency}        conversions' rounding residuals, in whole units

A buyer paying B (presentment) for a price P: in the presentment currency, clearing is
debited B, markup revenue credited R and the presentment FX position credited M = B - R;
in the price currency, the price FX position is debited P and the split (merchant,
commission, channel fee) credited P. Each currency balances by itself. When the channel
settles, the positions are flattened against what it actually delivered, and what is left
goes to FX rounding (the quote's residual, rounded half up) and FX gain/loss (the rest):
`split_position_close`. Refunds at the quoted rate reverse those lines in proportion
(`refund_quoted`); the rate move since payment stays in FX gain/loss.
"""
