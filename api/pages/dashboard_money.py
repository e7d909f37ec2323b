"""The merchant's money: balances per currency, statements with their payouts, and a
statement as CSV (another merchant's statement answers 404, as a missing one)."""

from __future__ import annotations

import asyncio
import csv
import io

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import AppContext, ContextDep
from api.errors import NotFound
from api.ledger_schemas import StatementDetail
from api.pages.order_page import not_found
from api.pages.render import PAGE_HEADERS, render
from api.pages.sessions import StaffSession
from api.services import ledger_views as views

router = APIRouter(include_in_schema=False)  # HTML, not the JSON API's contract


@router.get("/dashboard/balances")
async def balances(request: Request, context: ContextDep, holder: StaffSession) -> Response:
    assert holder.merchant_id is not None
    merchant_id = holder.merchant_id

    def read():  # type: ignore[no-untyped-def]
        with context.reads() as session:
            return (
                views.merchant_balances(session, merchant_id),
                views.merchant_statements(session, merchant_id, 50, None),
            )

    balance, statements = await asyncio.to_thread(read)
    values = {"balances": balance.balances, "statements": statements.data}
    return render(request, "balances.html", values, holder=holder)


@router.get("/dashboard/statements/{statement_id}")
async def statement(
    statement_id: str, request: Request, context: ContextDep, holder: StaffSession
) -> Response:
    detail = await asyncio.to_thread(_statement, context, holder.merchant_id, statement_id)
    if detail is None:
        return not_found(request, holder)
    return render(request, "statement.html", {"statement": detail}, holder=holder)


@router.get("/dashboard/statements/{statement_id}/csv")
async def statement_csv(
    statement_id: str, request: Request, context: ContextDep, holder: StaffSession
) -> Response:
    detail = await asyncio.to_thread(_statement, context, holder.merchant_id, statement_id)
    if detail is None:
        return not_found(request, holder)
    filename = f"statement-{detail.day}-{detail.currency}.csv"
    headers = {**PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(statement_as_csv(detail), media_type="text/csv", headers=headers)


def _statement(
    context: AppContext, merchant_id: str | None, statement_id: str
) -> StatementDetail | None:
    with context.reads() as session:
        try:
            detail = views.statement_detail(session, statement_id)
        except NotFound:
            return None
    return detail if detail.merchant_id == merchant_id else None


def statement_as_csv(detail: StatementDetail) -> str:
    """The statement's totals, then one row per order it covers (minor units)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["statement", detail.id, "day", detail.day, "currency", detail.currency])
    for field in (
        "opening_balance",
        "gross_amount",
        "channel_fee_amount",
        "commission_amount",
        "refunded_amount",
        "returned_amount",
        "clawback_amount",
        "payout_amount",
        "closing_balance",
        "order_count",
    ):
        writer.writerow([field, getattr(detail, field)])
    payout = detail.payout
    if payout is not None and payout.credited_amount is not None:
        writer.writerow(["payout_credit_currency", payout.credit_currency])
        writer.writerow(["payout_credited_amount", payout.credited_amount])
        writer.writerow(["payout_credit_rate", payout.credit_rate])
    writer.writerow([])
    writer.writerow(
        ["order_id", "gross", "channel_fee", "commission", "refunded_before_release", "released"]
    )
    for order in detail.orders:
        writer.writerow(
            [
                order.order_id,
                order.gross,
                order.channel_fee,
                order.commission,
                order.refunded_before_release,
                order.released,
            ]
        )
    return out.getvalue()
