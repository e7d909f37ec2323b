"""Merchants: onboarded and managed by operators; each reads itself and keeps its API keys.

The settlement bank account is sealed at rest (db.secret_box) and only its last 4
characters are ever shown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel import Session, col, select

from api.auth.api_keys import create_api_key
from api.auth.caller import MerchantOrOperator, OperatorCaller
from api.auth.scope import check_merchant
from api.auth_schemas import ApiKeyCreate, ApiKeyOut, NewApiKeyOut
from api.deps import AppContext, ContextDep
from api.errors import NotFound
from api.merchant_schemas import MerchantCreate, MerchantOut, MerchantPage, MerchantUpdate
from api.records import new_id, now
from api.routes.auth import NO_STORE
from db.identity import ApiKey
from db.tables import Merchant
from domain.money import currency_exponent

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])


def _out(merchant: Merchant) -> MerchantOut:
    return MerchantOut.model_validate(merchant, from_attributes=True)


def _seal_bank_account(context: AppContext, merchant: Merchant, number: str) -> None:
    compact = number.replace(" ", "").upper()
    merchant.bank_account_ciphertext = context.secret_box.seal(compact)
    merchant.bank_account_last4 = compact[-4:]


@router.post("", status_code=201)
def create_merchant(
    body: MerchantCreate, caller: OperatorCaller, context: ContextDep
) -> MerchantOut:
    currency_exponent(body.settlement_currency)  # an unknown currency is a 400
    stamp = now()
    merchant = Merchant(
        id=new_id("mer"),
        name=body.name,
        commission_rate=str(body.commission_rate),
        status="active",
        settlement_currency=body.settlement_currency,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
        created_at=stamp,
        updated_at=stamp,
    )
    _seal_bank_account(context, merchant, body.bank_account_number)
    with context.sessions() as session, session.begin():
        session.add(merchant)
    return _out(merchant)


@router.get("")
def list_merchants(
    caller: OperatorCaller,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> MerchantPage:
    query = select(Merchant).order_by(col(Merchant.id).desc())
    if starting_after is not None:
        query = query.where(Merchant.id < starting_after)
    with context.sessions() as session:
        rows = session.exec(query.limit(limit + 1)).all()
    page = [_out(row) for row in rows[:limit]]
    has_more = len(rows) > limit
    return MerchantPage(data=page, has_more=has_more, next_cursor=page[-1].id if has_more else None)


@router.get("/{merchant_id}")
def get_merchant(merchant_id: str, caller: MerchantOrOperator, context: ContextDep) -> MerchantOut:
    check_merchant(caller, merchant_id)
    with context.sessions() as session:
        return _out(_load(session, merchant_id))


@router.patch("/{merchant_id}")
def update_merchant(
    merchant_id: str, body: MerchantUpdate, caller: OperatorCaller, context: ContextDep
) -> MerchantOut:
    if body.settlement_currency is not None:
        currency_exponent(body.settlement_currency)
    with context.sessions() as session, session.begin():
        merchant = _load(session, merchant_id)
        changes = body.model_dump(exclude_unset=True, exclude={"bank_account_number"})
        for field, value in changes.items():
            if value is None:
                continue  # null leaves a field as it is; none of these may be cleared
            setattr(merchant, field, str(value))
        if body.bank_account_number is not None:
            _seal_bank_account(context, merchant, body.bank_account_number)
        merchant.updated_at = now()
        return _out(merchant)


@router.post("/{merchant_id}/suspend")
def suspend_merchant(merchant_id: str, caller: OperatorCaller, context: ContextDep) -> MerchantOut:
    return _set_status(context, merchant_id, "suspended")


@router.post("/{merchant_id}/reactivate")
def reactivate_merchant(
    merchant_id: str, caller: OperatorCaller, context: ContextDep
) -> MerchantOut:
    return _set_status(context, merchant_id, "active")


@router.post("/{merchant_id}/api-keys", status_code=201)
def create_key(
    merchant_id: str,
    caller: MerchantOrOperator,
    context: ContextDep,
    response: Response,
    body: ApiKeyCreate | None = None,
) -> NewApiKeyOut:
    """A new API key, shown in full this once (and never cached); the other keys stay live."""
    check_merchant(caller, merchant_id)
    response.headers.update(NO_STORE)
    with context.sessions() as session, session.begin():
        _load(session, merchant_id)
        created = create_api_key(session, merchant_id, (body or ApiKeyCreate()).name, now())
        return NewApiKeyOut(**_key_out(created.row).model_dump(), key=created.key)


@router.get("/{merchant_id}/api-keys")
def list_keys(merchant_id: str, caller: MerchantOrOperator, context: ContextDep) -> list[ApiKeyOut]:
    check_merchant(caller, merchant_id)
    with context.sessions() as session:
        _load(session, merchant_id)
        rows = session.exec(
            select(ApiKey).where(ApiKey.merchant_id == merchant_id).order_by(col(ApiKey.created_at))
        ).all()
        return [_key_out(row) for row in rows]


@router.delete("/{merchant_id}/api-keys/{key_id}")
def revoke_key(
    merchant_id: str, key_id: str, caller: MerchantOrOperator, context: ContextDep
) -> ApiKeyOut:
    """Revoke a key at once (idempotent); requests with it are refused from now on."""
    check_merchant(caller, merchant_id)
    with context.sessions() as session, session.begin():
        key = session.get(ApiKey, key_id)
        if key is None or key.merchant_id != merchant_id:
            raise NotFound("api_key_not_found", f"no API key {key_id}", "key_id")
        if key.revoked_at is None:
            key.revoked_at = now()
        return _key_out(key)


def _key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(key, from_attributes=True)


def _set_status(context: ContextDep, merchant_id: str, status: str) -> MerchantOut:
    with context.sessions() as session, session.begin():
        merchant = _load(session, merchant_id)
        merchant.status = status
        merchant.updated_at = now()
        return _out(merchant)


def _load(session: Session, merchant_id: str) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", "merchant_id")
    return merchant
