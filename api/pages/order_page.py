"""One order's page, for its merchant's staff and for operators: the order, its lines,
its timeline, and a refund form whose Idempotency-Key is made per render (a double
submit of one form is one refund; a new render is a new refund)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlmodel import col, select

from api.auth.caller import Caller
from api.auth.scope import order_for
from api.auth.web_sessions import SessionHolder
from api.deps import AppContext
from api.errors import NotFound
from api.pages.render import render
from api.pages.timeline import in_order, recorded_moments, saga_steps, workflow_history
from api.schemas import RefundCreate, RefundLineIn
from db.channel_conversions import order_conversions
from db.tables import OrderLine, OrderQuote
from domain.keys import order_workflow_id


async def order_page(
    request: Request,
    context: AppContext,
    holder: SessionHolder,
    caller: Caller,
    order_id: str,
    *,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    try:
        order, lines, moments, quote, conversions = await asyncio.to_thread(
            _read, context, caller, order_id
        )
    except NotFound:
        return not_found(request, holder)
    history = await workflow_history(context.temporal, order_id)
    steps = saga_steps(history) if history is not None else []
    values: dict[str, Any] = {
        "order": order,
        "lines": lines,
        "quote": quote,
        "conversions": conversions,
        "timeline": in_order(moments + steps),
        "history_missing": history is None,
        "idempotency_key": f"page-{secrets.token_urlsafe(16)}",
        "error": error,
        "done": request.query_params.get("done", ""),
        "temporal_link": _temporal_link(context, order_id) if caller.is_operator else None,
        "base": "/console" if caller.is_operator else "/dashboard",
    }
    return render(request, "order.html", values, holder=holder, status_code=status_code)


def _read(context: AppContext, caller: Caller, order_id: str):  # type: ignore[no-untyped-def]
    with context.reads() as session:
        order = order_for(session, caller, order_id)
        lines = session.exec(
            select(OrderLine).where(OrderLine.order_id == order_id).order_by(col(OrderLine.line_no))
        ).all()
        quote = session.exec(select(OrderQuote).where(OrderQuote.order_id == order_id)).first()
        return (
            order,
            list(lines),
            recorded_moments(session, order_id),
            quote,
            order_conversions(session, order_id),
        )


def _temporal_link(context: AppContext, order_id: str) -> str:
    settings = context.settings
    base = settings.temporal_ui_url or f"http://127.0.0.1:{settings.temporal_ui_port}"
    namespace = settings.temporal_namespace
    return f"{base.rstrip('/')}/namespaces/{namespace}/workflows/{order_workflow_id(order_id)}"


def refund_from_form(form: dict[str, str]) -> RefundCreate:
    """The refund a form asks for: an amount, or units per line (`line_{n}` fields).
    Raises ValueError (with words for a person) when it asks for neither or both."""
    amount_text = form.get("amount", "").strip()
    lines = []
    for name, value in form.items():
        if name.startswith("line_") and value.strip() not in ("", "0"):
            lines.append(RefundLineIn(line_no=int(name[5:]), quantity=int(value)))
    amount = int(amount_text) if amount_text else None
    return RefundCreate(amount=amount, lines=lines or None, reason=form.get("reason", "")[:200])


def not_found(request: Request, holder: SessionHolder | None) -> HTMLResponse:
    values = {"title": "Not found", "message": "Page not found."}
    return render(request, "message.html", values, holder=holder, status_code=404)
