"""Merchants, minimal for now: create, read, suspend, reactivate."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContextDep
from api.errors import NotFound
from api.records import new_id, now
from api.schemas import MerchantCreate, MerchantOut
from db.tables import Merchant

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])


def _out(merchant: Merchant) -> MerchantOut:
    return MerchantOut.model_validate(merchant, from_attributes=True)


@router.post("", status_code=201)
def create_merchant(body: MerchantCreate, context: ContextDep) -> MerchantOut:
    stamp = now()
    merchant = Merchant(
        id=new_id("mer"),
        name=body.name,
        commission_rate=str(body.commission_rate),
        status="active",
        created_at=stamp,
        updated_at=stamp,
    )
    with context.sessions() as session, session.begin():
        session.add(merchant)
    return _out(merchant)


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
