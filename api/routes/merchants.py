"""Merchants, minimal for now: create, read, suspend, reactivate, webhook endpoint and secret.

A merchant's webhook signing secret is made at creation and at each rotation,
stored sealed under the data key (`db.secret_box`), and shown only in the
answer that made it. Deliveries read the current secret on every attempt.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from pydantic import HttpUrl

from api.deps import AppContext, ContextDep
from api.errors import NotFound
from api.records import new_id, now
from api.schemas import (
    MerchantCreate,
    MerchantCreated,
    MerchantOut,
    WebhookConfig,
    WebhookSecretOut,
)
from db.secret_box import SecretBox
from db.tables import Merchant

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])


def _out(merchant: Merchant) -> MerchantOut:
    return MerchantOut.model_validate(merchant, from_attributes=True)


@router.post("", status_code=201)
def create_merchant(body: MerchantCreate, context: ContextDep) -> MerchantCreated:
    """Create a merchant; the answer carries its webhook signing secret, this once."""
    stamp = now()
    secret = _new_webhook_secret()
    merchant = Merchant(
        id=new_id("mer"),
        name=body.name,
        commission_rate=str(body.commission_rate),
        status="active",
        webhook_url=_url(body.webhook_url),
        webhook_secret_ciphertext=_box(context).seal(secret),
        created_at=stamp,
        updated_at=stamp,
    )
    with context.sessions() as session, session.begin():
        session.add(merchant)
    return MerchantCreated(**_out(merchant).model_dump(), webhook_secret=secret)


@router.get("/{merchant_id}")
def get_merchant(merchant_id: str, context: ContextDep) -> MerchantOut:
    with context.sessions() as session:
        return _out(_load(session, merchant_id))


@router.post("/{merchant_id}/suspend")
def suspend_merchant(merchant_id: str, context: ContextDep) -> MerchantOut:
    return _set_status(context, merchant_id, "suspended")


@router.post("/{merchant_id}/reactivate")
def reactivate_merchant(merchant_id: str, context: ContextDep) -> MerchantOut:
    return _set_status(context, merchant_id, "active")


@router.put("/{merchant_id}/webhook")
def set_webhook(merchant_id: str, body: WebhookConfig, context: ContextDep) -> MerchantOut:
    """Set (or, with `null`, remove) the endpoint; retries of pending events use it too."""
    with context.sessions() as session, session.begin():
        merchant = _load(session, merchant_id)
        merchant.webhook_url = _url(body.url)
        merchant.updated_at = now()
        return _out(merchant)


@router.post("/{merchant_id}/webhook-secret")
def rotate_webhook_secret(merchant_id: str, context: ContextDep) -> WebhookSecretOut:
    """Replace the signing secret at once; the old one signs nothing from now on."""
    secret = _new_webhook_secret()
    with context.sessions() as session, session.begin():
        merchant = _load(session, merchant_id)
        merchant.webhook_secret_ciphertext = _box(context).seal(secret)
        merchant.updated_at = now()
    return WebhookSecretOut(merchant_id=merchant_id, webhook_secret=secret)


def _set_status(context: ContextDep, merchant_id: str, status: str) -> MerchantOut:
    with context.sessions() as session, session.begin():
        merchant = _load(session, merchant_id)
        merchant.status = status
        merchant.updated_at = now()
        return _out(merchant)


def _load(session: object, merchant_id: str) -> Merchant:
    merchant = session.get(Merchant, merchant_id)  # type: ignore[attr-defined]
    if merchant is None:
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", "merchant_id")
    return merchant  # type: ignore[no-any-return]


def _new_webhook_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def _box(context: AppContext) -> SecretBox:
    return SecretBox(context.settings.data_key)


def _url(url: HttpUrl | None) -> str | None:
    return str(url) if url is not None else None
