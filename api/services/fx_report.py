"""The operators' FX report: realised FX gain or loss per day and channel, and merchants'
cross-border terms (their markup and the buyer countries they sell to)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel
from sqlmodel import Session, col, select

from db.tables import FxRealisation, MerchantFxTerms


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


class FxReport(BaseModel):
    day: date
    channel: str | None
    lines: list[FxReportLine]


class FxTermsIn(BaseModel):
    fx_markup_bps: int
    buyer_countries: list[str] | None = None  # ISO 3166 alpha-2; None: any country


class FxTermsOut(BaseModel):
    merchant_id: str
    fx_markup_bps: int
    buyer_countries: list[str] | None


def fx_report(session: Session, day: date, channel: str | None) -> FxReport:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    query = select(FxRealisation).where(
        col(FxRealisation.created_at) >= start,
        col(FxRealisation.created_at) < start + timedelta(days=1),
    )
    if channel is not None:
        query = query.where(FxRealisation.channel == channel)
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
    return FxReport(day=day, channel=channel, lines=lines)


def terms_out(merchant_id: str, row: MerchantFxTerms | None) -> FxTermsOut:
    if row is None:
        return FxTermsOut(merchant_id=merchant_id, fx_markup_bps=0, buyer_countries=None)
    countries = row.buyer_countries.split(",") if row.buyer_countries else None
    return FxTermsOut(
        merchant_id=merchant_id, fx_markup_bps=row.fx_markup_bps, buyer_countries=countries
    )


def set_terms(session: Session, merchant_id: str, terms: FxTermsIn) -> FxTermsOut:
    row = session.get(MerchantFxTerms, merchant_id) or MerchantFxTerms(merchant_id=merchant_id)
    row.fx_markup_bps = terms.fx_markup_bps
    row.buyer_countries = ",".join(terms.buyer_countries) if terms.buyer_countries else None
    session.add(row)
    return terms_out(merchant_id, row)
