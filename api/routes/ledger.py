"""Ledger reads: merchant balances, entries and statements; operators' accounts and trial balance.

Merchant paths live under /v1/merchants/{merchant_id}/ (the merchant itself and
operators) and operator paths under /v1/ledger/. Statement and payout reads are by
id; a merchant reading another's gets 404, as for one that does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import APIRouter, Query
from sqlmodel import Session

from api.auth.caller import MerchantOrOperator, OperatorCaller, Role
from api.auth.scope import check_merchant
from api.deps import AppContext, ContextDep
from api.ledger_schemas import (
    AccountDetail,
    AccountPage,
    LedgerEntryPage,
    MerchantBalances,
    PayoutOut,
    StatementDetail,
    StatementPage,
    TrialBalance,
)
from api.openapi_errors import error_responses
from api.services import ledger_views as views
from domain.ledger import AccountKind

router = APIRouter(tags=["ledger"])

P = ParamSpec("P")
T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(description="the last id of the previous page")]
Currency = Annotated[str | None, Query(pattern="^[A-Z]{3}$")]


async def _read(
    context: AppContext,
    view: Callable[Concatenate[Session, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run a synchronous view in a worker thread with a session of its own."""

    def run() -> T:
        with context.reads() as session:
            return view(session, *args, **kwargs)

    return await asyncio.to_thread(run)


@router.get("/v1/merchants/{merchant_id}/balances", responses=error_responses(401, 403, 404))
async def get_merchant_balances(
    merchant_id: str, caller: MerchantOrOperator, context: ContextDep
) -> MerchantBalances:
    """Pending, available and in transit, per currency (credit-positive)."""
    check_merchant(caller, merchant_id)
    return await _read(context, views.merchant_balances, merchant_id)


@router.get("/v1/merchants/{merchant_id}/ledger", responses=error_responses(400, 401, 403, 404))
async def list_merchant_entries(
    merchant_id: str,
    caller: MerchantOrOperator,
    context: ContextDep,
    currency: Currency = None,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> LedgerEntryPage:
    """The merchant's ledger entries, newest first, with its own postings only."""
    check_merchant(caller, merchant_id)
    return await _read(
        context, views.merchant_entries, merchant_id, currency, limit, starting_after
    )


@router.get("/v1/merchants/{merchant_id}/statements", responses=error_responses(400, 401, 403, 404))
async def list_merchant_statements(
    merchant_id: str,
    caller: MerchantOrOperator,
    context: ContextDep,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> StatementPage:
    """The merchant's statements, newest day first."""
    check_merchant(caller, merchant_id)
    return await _read(context, views.merchant_statements, merchant_id, limit, starting_after)


@router.get("/v1/statements/{statement_id}", responses=error_responses(401, 403, 404))
async def get_statement(
    statement_id: str, caller: MerchantOrOperator, context: ContextDep
) -> StatementDetail:
    """A statement with its payout and the orders and other entries it covers."""
    statement = await _read(context, views.statement_detail, statement_id)
    if caller.role == Role.MERCHANT and statement.merchant_id != caller.id:
        raise views.statement_not_found(statement_id)
    return statement


@router.get("/v1/payouts/{payout_id}", responses=error_responses(401, 403, 404))
async def get_payout(payout_id: str, caller: MerchantOrOperator, context: ContextDep) -> PayoutOut:
    payout = await _read(context, views.payout_detail, payout_id)
    if caller.role == Role.MERCHANT and payout.merchant_id != caller.id:
        raise views.payout_not_found(payout_id)
    return payout


@router.get("/v1/ledger/accounts", responses=error_responses(400, 401, 403))
async def list_accounts(
    caller: OperatorCaller,
    context: ContextDep,
    kind: AccountKind | None = None,
    owner: str | None = None,
    currency: Currency = None,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> AccountPage:
    """Every ledger account, in id order; balance is normal, debit_balance as stored."""
    return await _read(context, views.list_accounts, kind, owner, currency, limit, starting_after)


@router.get("/v1/ledger/accounts/{account_id}", responses=error_responses(400, 401, 403, 404))
async def get_account(
    account_id: str,
    caller: OperatorCaller,
    context: ContextDep,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> AccountDetail:
    """An account and its postings, newest first; the cursor is an entry id."""
    return await _read(context, views.account_detail, account_id, limit, starting_after)


@router.get("/v1/ledger/trial-balance", responses=error_responses(401, 403))
async def get_trial_balance(caller: OperatorCaller, context: ContextDep) -> TrialBalance:
    """Every currency's postings must sum to zero and every balance match its postings."""
    return await _read(context, views.read_trial_balance)
