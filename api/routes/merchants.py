"""Merchants: onboarded and managed by operators; each reads itself.

The settlement bank account is sealed at rest (db.secret_box) and only its last 4
characters are ever shown. The webhook signing secret is made here and shown once,
in the creation's answer (api.routes.merchant_webhooks rotates it). API keys:
api.routes.api_keys.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel import Session, select

from api.auth.caller import MerchantOrOperator, OperatorCaller
from api.auth.scope import check_merchant
from api.deps import AppContext, ContextDep
from api.errors import NotFound
from api.merchant_schemas import (
    MerchantCreate,
    MerchantCreated,
    MerchantOut,
    MerchantPage,
    MerchantUpdate,
)
from api.openapi_errors import error_responses
from api.pagination import Keyset, bad_cursor, fetch_page
from api.routes.auth import NO_STORE
from api.services.records import new_id, now
from api.services.webhook_urls import checked_webhook_url
from db.tables import Merchant
from domain.money import currency_exponent

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])
_NEWEST_FIRST = Keyset((Merchant.id,))  # ids are time-ordered


def merchant_out(merchant: Merchant) -> MerchantOut:
    return MerchantOut.model_validate(merchant, from_attributes=True)


def _seal_bank_account(context: AppContext, merchant: Merchant, number: str) -> None:
    compact = number.replace(" ", "").upper()
    merchant.bank_account_ciphertext = context.secret_box.seal(compact)
    merchant.bank_account_last4 = compact[-4:]


@router.post("", status_code=201, responses=error_responses(400, 401, 403, 413))
def create_merchant(
    body: MerchantCreate, caller: OperatorCaller, context: ContextDep, response: Response
) -> MerchantCreated:
    """Onboard a merchant; the answer carries its webhook signing secret, this once."""
    currency_exponent(body.settlement_currency)  # an unknown currency is a 400
    webhook_url = checked_webhook_url(body.webhook_url, context.settings, "webhook_url")
    response.headers.update(NO_STORE)
    stamp = now()
    secret = new_webhook_secret()
    merchant = Merchant(
        id=new_id("mer"),
        name=body.name,
        commission_rate=str(body.commission_rate),
        status="active",
        settlement_currency=body.settlement_currency,
        webhook_url=webhook_url,
        webhook_secret_ciphertext=context.secret_box.seal(secret),
        created_at=stamp,
        updated_at=stamp,
    )
    _seal_bank_account(context, merchant, body.bank_account_number)
    with context.sessions() as session, session.begin():
        session.add(merchant)
    return MerchantCreated(**merchant_out(merchant).model_dump(), webhook_secret=secret)


@router.get("", responses=error_responses(400, 401, 403))
def list_merchants(
    caller: OperatorCaller,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> MerchantPage:
    with context.reads() as session:
        cursor = None
        if starting_after is not None:
            cursor = session.get(Merchant, starting_after)
            if cursor is None:
                raise bad_cursor(starting_after)
        page = fetch_page(session, _NEWEST_FIRST.ordered(select(Merchant), cursor), limit)
    return MerchantPage(
        data=[merchant_out(row) for row in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor(lambda row: row.id),
    )


@router.get("/{merchant_id}", responses=error_responses(401, 403, 404))
def get_merchant(merchant_id: str, caller: MerchantOrOperator, context: ContextDep) -> MerchantOut:
    check_merchant(caller, merchant_id)
    with context.reads() as session:
        return merchant_out(load_merchant(session, merchant_id))


@router.patch("/{merchant_id}", responses=error_responses(400, 401, 403, 404, 413))
def update_merchant(
    merchant_id: str, body: MerchantUpdate, caller: OperatorCaller, context: ContextDep
) -> MerchantOut:
    if body.settlement_currency is not None:
        currency_exponent(body.settlement_currency)
    checked_webhook_url(body.webhook_url, context.settings, "webhook_url")
    with context.sessions() as session, session.begin():
        merchant = load_merchant(session, merchant_id)
        changes = body.model_dump(exclude_unset=True, exclude={"bank_account_number"})
        for field, value in changes.items():
            if value is None:
                continue  # null leaves a field as it is; none of these may be cleared
            setattr(merchant, field, str(value))
        if body.bank_account_number is not None:
            _seal_bank_account(context, merchant, body.bank_account_number)
        merchant.updated_at = now()
        return merchant_out(merchant)


@router.post("/{merchant_id}/suspend", responses=error_responses(401, 403, 404))
def suspend_merchant(merchant_id: str, caller: OperatorCaller, context: ContextDep) -> MerchantOut:
    return _set_status(context, merchant_id, "suspended")


@router.post("/{merchant_id}/reactivate", responses=error_responses(401, 403, 404))
def reactivate_merchant(
    merchant_id: str, caller: OperatorCaller, context: ContextDep
) -> MerchantOut:
    return _set_status(context, merchant_id, "active")


def _set_status(context: ContextDep, merchant_id: str, status: str) -> MerchantOut:
    with context.sessions() as session, session.begin():
        merchant = load_merchant(session, merchant_id)
        merchant.status = status
        merchant.updated_at = now()
        return merchant_out(merchant)


def new_webhook_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def load_merchant(session: Session, merchant_id: str) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", "merchant_id")
    return merchant
