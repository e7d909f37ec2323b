"""Signing in and out of the pages: staff at /dashboard/sign-in, operators at
/console/sign-in; the language switch.

Every password check counts against the API's throttle (per account and address,
per address, per account): operators under the same action as the API's sign-in, so
the page is no way around it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth.rate_limit import TooManyRequests, client_address
from api.auth.staff import authenticate_staff
from api.auth.users import authenticate, normalise_email
from api.auth.web_sessions import end_session, open_session
from api.deps import AppContext, ContextDep
from api.pages.i18n import LANG_COOKIE, LOCALES
from api.pages.render import render
from api.pages.sessions import (
    SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
    check_csrf,
    current_holder,
    set_cookie,
    sign_in_csrf,
)
from api.services.records import now

router = APIRouter(include_in_schema=False)  # HTML, not the JSON API's contract

_HOMES = {"merchant": "/dashboard", "operator": "/console"}
_TITLES = {"merchant": "Merchant dashboard", "operator": "Operator console"}
Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=128)]


def _form(
    request: Request, context: AppContext, kind: str, error: str = "", status: int = 200
) -> HTMLResponse:
    token = sign_in_csrf(request)
    values = {"kind": kind, "title": _TITLES[kind], "error": error, "sign_in_csrf": token}
    response = render(request, "sign_in.html", values, status_code=status)
    set_cookie(response, context, SIGN_IN_CSRF_COOKIE, token)
    return response


@router.get("/dashboard/sign-in")
def staff_form(request: Request, context: ContextDep) -> Response:
    return _form(request, context, "merchant")


@router.get("/console/sign-in")
def operator_form(request: Request, context: ContextDep) -> Response:
    return _form(request, context, "operator")


@router.post("/dashboard/sign-in")
async def staff_sign_in(
    request: Request, context: ContextDep, email: Email, password: Password
) -> Response:
    return await _sign_in(request, context, "merchant", email, password)


@router.post("/console/sign-in")
async def operator_sign_in(
    request: Request, context: ContextDep, email: Email, password: Password
) -> Response:
    return await _sign_in(request, context, "operator", email, password)


async def _sign_in(
    request: Request, context: AppContext, kind: str, email: str, password: str
) -> Response:
    await check_csrf(request, None)
    action = "staff-sign-in" if kind == "merchant" else "sign-in"
    try:
        context.throttle.hit(action, normalise_email(email), client_address(request))
    except TooManyRequests:
        return _form(request, context, kind, "Too many attempts; try again in a minute.", 429)
    token = await asyncio.to_thread(_open, context, kind, email, password)
    if token is None:
        return _form(request, context, kind, "Wrong email or password.", 401)
    response = RedirectResponse(_HOMES[kind], status_code=303)
    set_cookie(response, context, SESSION_COOKIE, token)
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path="/")
    return response


def _open(context: AppContext, kind: str, email: str, password: str) -> str | None:
    """A new session's cookie token for these credentials, or None."""
    stamp = now()
    with context.sessions() as session, session.begin():
        if kind == "merchant":
            staff = authenticate_staff(session, email, password, stamp)
            subject = (staff.id, staff.token_version) if staff else None
        else:
            user = authenticate(session, email, password, stamp)
            is_operator = user is not None and user.role == "operator"
            subject = (user.id, user.token_version) if user and is_operator else None
        if subject is None:
            return None
        return open_session(session, kind, subject[0], subject[1], stamp).token


@router.post("/sign-out")
async def sign_out(request: Request, context: ContextDep) -> Response:
    holder = await current_holder(request, context)
    if holder is None:
        return RedirectResponse("/dashboard/sign-in", status_code=303)
    await check_csrf(request, holder)

    def end() -> None:
        with context.sessions() as session, session.begin():
            end_session(session, holder.session_id, now())

    await asyncio.to_thread(end)
    response = RedirectResponse(
        "/dashboard/sign-in" if holder.kind == "merchant" else "/console/sign-in", status_code=303
    )
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/language/{locale}")
def switch_language(locale: str, context: ContextDep, next: str = "/dashboard") -> Response:
    """Remember the chosen language and go back where the switch was pressed (only ever
    to a path of ours: `next` from elsewhere goes home)."""
    local = next.startswith("/") and not next.startswith("//") and "\\" not in next
    response = RedirectResponse(next if local else "/dashboard", status_code=303)
    if locale in LOCALES:
        response.set_cookie(LANG_COOKIE, locale, samesite="lax", path="/", max_age=365 * 86400)
    return response
