"""The operators' FX report: realised FX gain or loss per day and channel, and merchants'
cross-border terms (their markup and the buyer countries they sell to)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from pydantic import BaseModel
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from db.tables import ChannelConversion, FxRealisation, MerchantFxTerms, Order

# Rows made at a time, of a channel and an order: the report's two tables.
_Dated = TypeVar("_Dated", FxRealisation, ChannelConversion)


class FxReportLine(BaseModel):
    """One channel's conversions of one currency pair on the day, and how they were booked
    (minor units of the settlement currency; gain positive, loss negative)."""

    channel: str
    presentment_currency: str
    settlement_currency: str
    realisations: int
    presentment_amount: int  # converted by the channel (negative: bought back for refunds)
    settled_amount: int
    markup_amount: int
    rounding_amount: int
    gain_loss_amount: int


class ChannelConversionLine(BaseModel):
    """The wallets' own conversions on the day for one channel and currency pair: orders
    priced in `price_currency` that Chinese buyers paid in `payer_currency`, converted by
    the channel at its rate and settled to us in the price currency. Informational: the
    channel held the currency, so there is no FX position, gain or loss of ours; the price
    figures are the ones the merchant's statement shows (paid less refunded)."""

    channel: str
    price_currency: str
    payer_currency: str
    payments: int
    refunds: int
    price_paid: int  # minor units of price_currency
    price_refunded: int
    payer_paid: int  # minor units of payer_currency, what the buyers were charged
    payer_refunded: int  # what the buyers were given back
    fx_exposure: int = 0  # always 0: the channel converts, not we


class FxReport(BaseModel):
    day: date
    channel: str | None
    merchant_id: str | None = None
    lines: list[FxReportLine]
    channel_conversions: list[ChannelConversionLine] = []


class FxTermsIn(BaseModel):
    fx_markup_bps: int
    buyer_countries: list[str] | None = None  # ISO 3166 alpha-2; None: any country
    price_currencies: list[str] | None = None  # ISO 4217; None: any currency
    convert_payouts: bool = False  # credited in the settlement currency, by the bank


class FxTermsOut(BaseModel):
    merchant_id: str
    fx_markup_bps: int
    buyer_countries: list[str] | None
    price_currencies: list[str] | None
    convert_payouts: bool


def fx_report(
    session: Session, day: date, channel: str | None, merchant_id: str | None = None
) -> FxReport:
    query = _of_the_day(FxRealisation, day, channel, merchant_id)
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * 6)
    for row in session.exec(query):
        sums = totals[(row.channel, row.presentment_currency, row.settlement_currency)]
        for index, amount in enumerate(
            (
                1,
                row.presentment_amount,
                row.settled_amount,
                row.markup_amount,
                row.rounding_amount,
                row.gain_loss_amount,
            )
        ):
            sums[index] += amount
    lines = [
        FxReportLine(
            channel=key[0],
            presentment_currency=key[1],
            settlement_currency=key[2],
            realisations=sums[0],
            presentment_amount=sums[1],
            settled_amount=sums[2],
            markup_amount=sums[3],
            rounding_amount=sums[4],
            gain_loss_amount=sums[5],
        )
        for key, sums in sorted(totals.items())
    ]
    return FxReport(
        day=day,
        channel=channel,
        merchant_id=merchant_id,
        lines=lines,
        channel_conversions=_channel_conversions(session, day, channel, merchant_id),
    )


def _of_the_day(
    table: type[_Dated], day: date, channel: str | None, merchant_id: str | None
) -> SelectOfScalar[_Dated]:
    """The rows of `table` made on `day` (UTC), of `channel` and of `merchant_id`'s orders
    when given."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    query = select(table).where(
        col(table.created_at) >= start, col(table.created_at) < start + timedelta(days=1)
    )
    if channel is not None:
        query = query.where(col(table.channel) == channel)
    if merchant_id is not None:
        query = query.join(Order, col(Order.id) == col(table.order_id)).where(
            Order.merchant_id == merchant_id
        )
    return query


def _channel_conversions(
    session: Session, day: date, channel: str | None, merchant_id: str | None
) -> list[ChannelConversionLine]:
    query = _of_the_day(ChannelConversion, day, channel, merchant_id)
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * 6)
    for row in session.exec(query):
        sums = totals[(row.channel, row.price_currency, row.payer_currency)]
        base = 0 if row.kind == "payment" else 1
        sums[base] += 1
        sums[2 + base] += row.price_amount
        sums[4 + base] += row.payer_amount
    return [
        ChannelConversionLine(
            channel=key[0],
            price_currency=key[1],
            payer_currency=key[2],
            payments=sums[0],
            refunds=sums[1],
            price_paid=sums[2],
            price_refunded=sums[3],
            payer_paid=sums[4],
            payer_refunded=sums[5],
        )
        for key, sums in sorted(totals.items())
    ]


def terms_out(merchant_id: str, row: MerchantFxTerms | None) -> FxTermsOut:
    if row is None:
        return FxTermsOut(
            merchant_id=merchant_id,
            fx_markup_bps=0,
            buyer_countries=None,
            price_currencies=None,
            convert_payouts=False,
        )
    return FxTermsOut(
        merchant_id=merchant_id,
        fx_markup_bps=row.fx_markup_bps,
        buyer_countries=_listed(row.buyer_countries),
        price_currencies=_listed(row.price_currencies),
        convert_payouts=row.convert_payouts,
    )


def _listed(joined: str | None) -> list[str] | None:
    return joined.split(",") if joined else None


def set_terms(session: Session, merchant_id: str, terms: FxTermsIn) -> FxTermsOut:
    row = session.get(MerchantFxTerms, merchant_id) or MerchantFxTerms(merchant_id=merchant_id)
    row.fx_markup_bps = terms.fx_markup_bps
    row.buyer_countries = ",".join(terms.buyer_countries) if terms.buyer_countries else None
    row.price_currencies = ",".join(terms.price_currencies) if terms.price_currencies else None
    row.convert_payouts = terms.convert_payouts
    session.add(row)
    return terms_out(merchant_id, row)
