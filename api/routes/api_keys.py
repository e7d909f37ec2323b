"""Merchants' API keys: made (shown once), listed (prefix only), revoked; several live at once."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlmodel import col, select

from api.auth.api_keys import create_api_key
from api.auth.caller import MerchantOrOperator
from api.auth.scope import check_merchant
from api.auth_schemas import ApiKeyCreate, ApiKeyOut, NewApiKeyOut
from api.deps import ContextDep
from api.errors import NotFound
from api.openapi_errors import error_responses
from api.routes.auth import NO_STORE
from api.routes.merchants import load_merchant
from api.services.records import now
from db.identity import ApiKey

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])


@router.post(
    "/{merchant_id}/api-keys",
    status_code=201,
    responses=error_responses(400, 401, 403, 404, 413),
)
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
        load_merchant(session, merchant_id)
        created = create_api_key(session, merchant_id, (body or ApiKeyCreate()).name, now())
        return NewApiKeyOut(**_key_out(created.row).model_dump(), key=created.key)


@router.get("/{merchant_id}/api-keys", responses=error_responses(401, 403, 404))
def list_keys(merchant_id: str, caller: MerchantOrOperator, context: ContextDep) -> list[ApiKeyOut]:
    check_merchant(caller, merchant_id)
    with context.reads() as session:
        load_merchant(session, merchant_id)
        rows = session.exec(
            select(ApiKey).where(ApiKey.merchant_id == merchant_id).order_by(col(ApiKey.created_at))
        ).all()
        return [_key_out(row) for row in rows]


@router.delete("/{merchant_id}/api-keys/{key_id}", responses=error_responses(401, 403, 404))
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
