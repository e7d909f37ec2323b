"""Cross-border: the operators' FX report, and merchants' FX terms."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from api.auth.caller import MerchantOrOperator, OperatorCaller
from api.auth.scope import check_merchant
from api.deps import ContextDep
from api.errors import InvalidRequest
from api.openapi_errors import error_responses
from api.routes.merchants import load_merchant
from api.services.fx_report import FxReport, FxTermsIn, FxTermsOut, fx_report, set_terms, terms_out
from db.tables import MerchantFxTerms
from domain.errors import DomainError
from domain.fx.quotes import MAX_MARKUP_BPS
from domain.money import currency_exponent

router = APIRouter(tags=["fx"])


class FxTermsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fx_markup_bps: Annotated[StrictInt, Field(ge=0, le=MAX_MARKUP_BPS)]
    buyer_countries: list[Annotated[StrictStr, Field(pattern=r"^[A-Z]{2}$")]] | None = Field(
        default=None, max_length=250
    )
    # The currencies the merchant may price its orders in, each once; None: any.
    price_currencies: list[Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]] | None = Field(
        default=None, min_length=1, max_length=50
    )
    # Payouts credited in the merchant's settlement currency, converted by the bank at its
    # rate; false: each payout in its own currency.
    convert_payouts: StrictBool = False


@router.get("/v1/fx/report", responses=error_responses(400, 401, 403))
async def get_fx_report(
    caller: OperatorCaller,
    context: ContextDep,
    day: Annotated[StrictStr, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")],
    channel: Annotated[str | None, Query(max_length=64)] = None,
    merchant_id: Annotated[str | None, Query(max_length=64)] = None,
) -> FxReport:
    """Realised FX gain or loss of a day (UTC), per channel and currency pair, and the
    wallets' own conversions of foreign prices (informational: the channel converts);
    `merchant_id` narrows both to one merchant's orders, to read beside its statement."""
    try:
        asked = date.fromisoformat(day)
    except ValueError:
        raise InvalidRequest("invalid_day", f"{day} is not a date", "day") from None

    def run() -> FxReport:
        with context.reads() as session:
            return fx_report(session, asked, channel, merchant_id)

    return await asyncio.to_thread(run)


@router.get("/v1/merchants/{merchant_id}/fx-terms", responses=error_responses(401, 403, 404))
def get_fx_terms(merchant_id: str, caller: MerchantOrOperator, context: ContextDep) -> FxTermsOut:
    check_merchant(caller, merchant_id)
    with context.reads() as session:
        load_merchant(session, merchant_id)
        return terms_out(merchant_id, session.get(MerchantFxTerms, merchant_id))


@router.put(
    "/v1/merchants/{merchant_id}/fx-terms", responses=error_responses(400, 401, 403, 404, 413)
)
def put_fx_terms(
    merchant_id: str, body: FxTermsBody, caller: OperatorCaller, context: ContextDep
) -> FxTermsOut:
    """An operator sets the merchant's markup on quoted rates, its buyer countries and the
    currencies it prices in (each a currency we know, or 400 `unknown_currency`)."""
    _check_price_currencies(body.price_currencies or [])
    with context.sessions() as session, session.begin():
        load_merchant(session, merchant_id)
        return set_terms(session, merchant_id, FxTermsIn(**body.model_dump()))


def _check_price_currencies(currencies: list[str]) -> None:
    if len(set(currencies)) != len(currencies):
        message = "each price currency is named once"
        raise InvalidRequest("duplicate_currency", message, "price_currencies")
    for currency in currencies:
        try:
            currency_exponent(currency)
        except DomainError as error:
            raise InvalidRequest(error.code, error.message, "price_currencies") from None
