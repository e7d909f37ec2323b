"""The operator console: the review queue (with the saga's retry signal), any order's
page with its workflow in the Temporal UI, merchants (onboard, suspend, reactivate,
their staff), coupons, settlement runs and their progress, and the ledger's health.

Actions go through the API's own route functions, with the operator as the caller: the
same checks and the same errors as the JSON API.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlmodel import col, or_, select
from temporalio.service import RPCError

from api.auth.passwords import MAX_LENGTH, MIN_LENGTH
from api.auth.staff import create_merchant_user
from api.auth.users import EmailTaken
from api.auth.web_sessions import SessionHolder
from api.deps import AppContext, ContextDep
from api.errors import ApiError, NotFound
from api.merchant_schemas import MerchantCreate
from api.pages.dashboard_orders import refund_order
from api.pages.order_page import not_found, order_page
from api.pages.render import render
from api.pages.sessions import OperatorSession, caller_of, check_csrf
from api.routes import coupons, merchants, settlements
from api.services import ledger_views as views
from api.services.records import now
from db.reconcile import ledger_problems
from db.tables import Merchant, Order
from domain.keys import order_workflow_id
from domain.order_status import OrderStatus
from workflows.order import OrderWorkflow
from workflows.settlement import SettlementRunWorkflow

router = APIRouter(include_in_schema=False)  # HTML, not the JSON API's contract


async def _form(request: Request, holder: SessionHolder) -> dict[str, str]:
    await check_csrf(request, holder)
    return {key: str(value) for key, value in (await request.form()).items()}


# -- review queue and orders ------------------------------------------------------


@router.get("/console")
async def review_queue(request: Request, context: ContextDep, holder: OperatorSession) -> Response:
    def read() -> list[Order]:
        query = select(Order).where(
            or_(col(Order.needs_review), Order.status == OrderStatus.COMPENSATION_FAILED.value)
        )
        with context.reads() as session:
            return list(session.exec(query.order_by(col(Order.updated_at).desc()).limit(100)))

    values = {"orders": await asyncio.to_thread(read), "done": request.query_params.get("done")}
    return render(request, "review_queue.html", values, holder=holder)


@router.post("/console/orders/{order_id}/retry")
async def retry(
    order_id: str, request: Request, context: ContextDep, holder: OperatorSession
) -> Response:
    """The saga's own signal: it is ignored unless the order is compensation_failed."""
    await _form(request, holder)
    handle = context.temporal.get_workflow_handle(order_workflow_id(order_id))
    try:
        await handle.signal(OrderWorkflow.retry_compensation)
    except RPCError:
        return not_found(request, holder)
    return RedirectResponse("/console?done=retry", status_code=303)


@router.get("/console/orders/{order_id}")
async def order(
    order_id: str, request: Request, context: ContextDep, holder: OperatorSession
) -> Response:
    return await order_page(request, context, holder, caller_of(holder), order_id)


@router.post("/console/orders/{order_id}/refunds")
async def refund(
    order_id: str, request: Request, context: ContextDep, holder: OperatorSession
) -> Response:
    return await refund_order(request, context, holder, order_id, "/console")


# -- merchants ----------------------------------------------------------------------


@router.get("/console/merchants")
async def merchants_page(
    request: Request, context: ContextDep, holder: OperatorSession
) -> Response:
    return await _merchants(request, context, holder)


async def _merchants(
    request: Request, context: AppContext, holder: SessionHolder, **extra: Any
) -> Response:
    def read() -> list[Merchant]:
        with context.reads() as session:
            query = select(Merchant).order_by(col(Merchant.created_at).desc()).limit(200)
            return list(session.exec(query))

    values = {"merchants": await asyncio.to_thread(read), "error": "", "created": None, **extra}
    status = 400 if values["error"] else 200
    return render(request, "merchants.html", values, holder=holder, status_code=status)


@router.post("/console/merchants")
async def onboard(request: Request, context: ContextDep, holder: OperatorSession) -> Response:
    form = await _form(request, holder)
    try:
        body = MerchantCreate(
            name=form.get("name", ""),
            commission_rate=form.get("commission_rate", ""),
            settlement_currency=form.get("settlement_currency", ""),
            bank_account_number=form.get("bank_account_number", ""),
        )
        created = await asyncio.to_thread(
            merchants.create_merchant, body, caller_of(holder), context, Response()
        )
    except ValidationError as error:
        first = error.errors()[0]
        message = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return await _merchants(request, context, holder, error=message)
    except ApiError as error:
        return await _merchants(request, context, holder, error=error.message)
    return await _merchants(request, context, holder, created=created)


@router.post("/console/merchants/{merchant_id}/{action}")
async def merchant_action(
    merchant_id: str, action: str, request: Request, context: ContextDep, holder: OperatorSession
) -> Response:
    form = await _form(request, holder)
    caller = caller_of(holder)
    try:
        if action == "suspend":
            await asyncio.to_thread(merchants.suspend_merchant, merchant_id, caller, context)
        elif action == "reactivate":
            await asyncio.to_thread(merchants.reactivate_merchant, merchant_id, caller, context)
        elif action == "users":
            error = await asyncio.to_thread(_add_staff, context, merchant_id, form)
            if error:
                return await _merchants(request, context, holder, error=error)
        else:
            return not_found(request, holder)
    except NotFound:
        return not_found(request, holder)
    return RedirectResponse("/console/merchants", status_code=303)


def _add_staff(context: AppContext, merchant_id: str, form: dict[str, str]) -> str:
    """Make a staff member of the merchant (its first is the owner); an error's words."""
    email, password = form.get("email", "").strip(), form.get("password", "")
    if "@" not in email or not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"An email, and a password of {MIN_LENGTH} to {MAX_LENGTH} characters."
    with context.sessions() as session, session.begin():
        merchants.load_merchant(session, merchant_id)
        try:
            create_merchant_user(session, merchant_id, email, password, now())
        except EmailTaken:
            return "That email has an account."
    return ""


# -- coupons, settlement, ledger --------------------------------------------------------


@router.get("/console/coupons")
async def coupons_page(request: Request, context: ContextDep, holder: OperatorSession) -> Response:
    page = await asyncio.to_thread(coupons.list_coupons, caller_of(holder), context, 100, None)
    return render(request, "coupons.html", {"coupons": page.data}, holder=holder)


@router.post("/console/coupons/{code}/disable")
async def disable_coupon(
    code: str, request: Request, context: ContextDep, holder: OperatorSession
) -> Response:
    await _form(request, holder)
    try:
        await asyncio.to_thread(coupons.disable_coupon, code, caller_of(holder), context)
    except NotFound:
        return not_found(request, holder)
    return RedirectResponse("/console/coupons", status_code=303)


@router.get("/console/settlements")
async def settlement_runs(
    request: Request, context: ContextDep, holder: OperatorSession
) -> Response:
    return await _runs(request, context, holder)


async def _runs(
    request: Request, context: AppContext, holder: SessionHolder, error: str = ""
) -> Response:
    runs = []
    query = "WorkflowType = 'SettlementRunWorkflow'"
    try:
        async for run in context.temporal.list_workflows(query, limit=10):
            handle = context.temporal.get_workflow_handle(run.id, run_id=run.run_id)
            progress = await handle.query(SettlementRunWorkflow.progress)
            runs.append(
                {
                    "id": run.id,
                    "status": run.status.name if run.status else "",
                    "progress": progress,
                }
            )
    except RPCError:
        error = error or "The workflow service is not answering now."
    running = any(run["status"] == "RUNNING" for run in runs)
    values = {"runs": runs, "error": error, "running": running, "today": date.today().isoformat()}
    return render(
        request, "settlements.html", values, holder=holder, status_code=400 if error else 200
    )


@router.post("/console/settlements")
async def run_day(request: Request, context: ContextDep, holder: OperatorSession) -> Response:
    form = await _form(request, holder)
    try:
        body = settlements.RunIn(day=form.get("day", ""))
        await settlements.run_day(body, caller_of(holder), context)
    except ValidationError:
        return await _runs(request, context, holder, error="A day: YYYY-MM-DD.")
    except ApiError as error:
        return await _runs(request, context, holder, error=error.message)
    return RedirectResponse("/console/settlements", status_code=303)


@router.get("/console/ledger")
async def ledger(request: Request, context: ContextDep, holder: OperatorSession) -> Response:
    def read():  # type: ignore[no-untyped-def]
        with context.reads() as session:
            return views.read_trial_balance(session), ledger_problems(session)

    trial, problems = await asyncio.to_thread(read)
    values = {"trial": trial, "problems": problems}
    return render(request, "ledger.html", values, holder=holder)
