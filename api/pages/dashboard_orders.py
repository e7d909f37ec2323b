"""The merchant's orders: the list (filters, search by id, pages), an order's page, the
refund form (through the API's refund code) and resending a webhook event."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import col, select

from api.auth.web_sessions import SessionHolder
from api.deps import AppContext, ContextDep
from api.errors import ApiError, NotFound
from api.pages.order_page import not_found, order_page, refund_from_form
from api.pages.render import render
from api.pages.sessions import StaffSession, caller_of, check_csrf
from api.services.refund_requests import request_refund
from api.services.webhook_resend import resend_event
from db.tables import Order
from domain.order_status import OrderStatus

router = APIRouter(include_in_schema=False)  # HTML, not the JSON API's contract
PAGE_SIZE = 25
CHANNELS = ("alipay", "wechatpay", "card")


@router.get("/dashboard")
async def orders(request: Request, context: ContextDep, holder: StaffSession) -> Response:
    filters = _filters(request.query_params)
    assert holder.merchant_id is not None
    rows = await asyncio.to_thread(_orders, context, holder.merchant_id, filters)
    values = {
        "orders": rows[:PAGE_SIZE],
        "next_cursor": rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
        "filters": filters,
        "statuses": [status.value for status in OrderStatus],
        "channels": CHANNELS,
        "query": "&".join(f"{k}={v}" for k, v in filters.items() if v and k != "after"),
    }
    return render(request, "orders.html", values, holder=holder)


def _filters(params: Any) -> dict[str, str]:
    names = ("status", "channel", "from", "to", "min", "max", "q", "after")
    return {name: str(params.get(name, "")).strip()[:64] for name in names}


def _orders(context: AppContext, merchant_id: str, filters: dict[str, str]) -> list[Order]:
    """A page of the merchant's orders, newest id first; a filter it cannot read is
    ignored (the form shows what was asked)."""
    query = select(Order).where(Order.merchant_id == merchant_id)
    if filters["q"]:
        query = query.where(col(Order.id).contains(filters["q"]))
    if filters["status"]:
        query = query.where(Order.status == filters["status"])
    if filters["channel"]:
        query = query.where(Order.channel == filters["channel"])
    start, end = _day(filters["from"]), _day(filters["to"])
    if start:
        query = query.where(col(Order.created_at) >= start)
    if end:
        query = query.where(col(Order.created_at) < end + timedelta(days=1))
    low, high = _int(filters["min"]), _int(filters["max"])
    if low is not None:
        query = query.where(col(Order.payable_amount) >= low)
    if high is not None:
        query = query.where(col(Order.payable_amount) <= high)
    if filters["after"]:
        query = query.where(col(Order.id) < filters["after"])
    with context.reads() as session:
        return list(session.exec(query.order_by(col(Order.id).desc()).limit(PAGE_SIZE + 1)))


def _day(text: str) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(text), time(), UTC) if text else None
    except ValueError:
        return None


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


@router.get("/dashboard/orders/{order_id}")
async def order(
    order_id: str, request: Request, context: ContextDep, holder: StaffSession
) -> Response:
    return await order_page(request, context, holder, caller_of(holder), order_id)


@router.post("/dashboard/orders/{order_id}/refunds")
async def refund(
    order_id: str, request: Request, context: ContextDep, holder: StaffSession
) -> Response:
    return await refund_order(request, context, holder, order_id, "/dashboard")


async def refund_order(
    request: Request, context: AppContext, holder: SessionHolder, order_id: str, base: str
) -> Response:
    """Ask for the form's refund through the API's own code (the same rules, the same
    idempotency); a refusal re-renders the page with the reason."""
    await check_csrf(request, holder)
    form = {key: str(value) for key, value in (await request.form()).items()}
    caller = caller_of(holder)
    key = form.get("idempotency_key", "")[:255]
    try:
        body = refund_from_form(form)
        if not key:
            raise ValueError("no Idempotency-Key")  # only a forged form lacks one
        await request_refund(context, caller, order_id, body, key)
    except NotFound:
        return not_found(request, holder)
    except (ValueError, ValidationError):
        return await order_page(
            request,
            context,
            holder,
            caller,
            order_id,
            error="Give an amount or units per line.",
            status_code=400,
        )
    except ApiError as error:
        return await order_page(
            request,
            context,
            holder,
            caller,
            order_id,
            error=error.message,
            status_code=error.status_code,
        )
    return RedirectResponse(f"{base}/orders/{order_id}?done=refund", status_code=303)


@router.post("/dashboard/webhook-events/{event_id}/resend")
async def resend(
    event_id: str, request: Request, context: ContextDep, holder: StaffSession
) -> Response:
    await check_csrf(request, holder)
    form = await request.form()
    try:
        await resend_event(context, holder.merchant_id, event_id)
    except NotFound:
        return not_found(request, holder)
    except ApiError as error:
        values = {"title": "Resend", "message": error.message}
        return render(request, "message.html", values, holder=holder, status_code=400)
    back = str(form.get("back", "/dashboard"))
    return RedirectResponse(
        back if back.startswith("/dashboard") else "/dashboard", status_code=303
    )
