"""Who is signed in to the pages, and the CSRF check every form's POST passes.

The session cookie (`paysaga_session`) is HttpOnly, SameSite=Lax (a link from a mail
opens the dashboard signed in; a cross-site POST carries no cookie), Path=/, and
Secure unless `session_cookie_secure` is off. Forms of a session carry its
synchronizer token (stored in the session row). The sign-in form, before any session,
is a double-submit: a random `paysaga_csrf` cookie that the form repeats.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request, Response

from api.auth.caller import Caller, Role
from api.auth.web_sessions import SessionHolder, read_session
from api.deps import AppContext, ContextDep
from api.services.records import now

SESSION_COOKIE = "paysaga_session"
SIGN_IN_CSRF_COOKIE = "paysaga_csrf"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """No live session of the kind the page is for: answered with a redirect to sign in."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class CsrfRefused(Exception):
    """A POST without its form's token: answered 403, and nothing changes."""


def set_cookie(response: Response, context: AppContext, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        secure=context.settings.session_cookie_secure,
        samesite="lax",
        path="/",
    )


async def current_holder(request: Request, context: AppContext) -> SessionHolder | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None

    def read() -> SessionHolder | None:
        with context.reads() as session:
            return read_session(session, token, now())

    return await asyncio.to_thread(read)


def _requiring(kind: str):  # type: ignore[no-untyped-def]
    async def dependency(request: Request, context: ContextDep) -> SessionHolder:
        holder = await current_holder(request, context)
        if holder is None or holder.kind != kind:
            raise SignInRequired(kind)
        request.state.holder = holder
        return holder

    return dependency


StaffSession = Annotated[SessionHolder, Depends(_requiring("merchant"))]
OperatorSession = Annotated[SessionHolder, Depends(_requiring("operator"))]


def caller_of(holder: SessionHolder) -> Caller:
    """The API's caller for this session: staff act as their merchant, operators as
    themselves; so the pages reach the API's own code with the API's own rules."""
    if holder.kind == "merchant":
        assert holder.merchant_id is not None
        return Caller(Role.MERCHANT, holder.merchant_id)
    return Caller(Role.OPERATOR, holder.subject_id)


async def check_csrf(request: Request, holder: SessionHolder | None) -> None:
    """Refuse the POST unless its form carries the expected token (constant time)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = holder.csrf_token if holder else request.cookies.get(SIGN_IN_CSRF_COOKIE)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise CsrfRefused()


def sign_in_csrf(request: Request) -> str:
    """The sign-in form's token: the cookie's if the browser has one, else a new one."""
    return request.cookies.get(SIGN_IN_CSRF_COOKIE) or secrets.token_urlsafe(32)
