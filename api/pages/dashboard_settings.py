"""The merchant's settings: API keys (a new one shown once; revoke), the webhook (URL,
checked as the API checks it; rotating the secret; the delivery log), the team (the
owner adds staff) and the signed-in person's password (changing it ends every session)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import HttpUrl, TypeAdapter, ValidationError
from sqlmodel import col, select

from api.auth.api_keys import create_api_key
from api.auth.passwords import MAX_LENGTH, MIN_LENGTH, verify_password
from api.auth.rate_limit import TooManyRequests, client_address
from api.auth.staff import change_staff_password, create_merchant_user, merchant_staff
from api.auth.users import EmailTaken
from api.auth.web_sessions import SessionHolder
from api.deps import AppContext, ContextDep
from api.errors import ApiError
from api.pages.render import render
from api.pages.sessions import SESSION_COOKIE, StaffSession, check_csrf
from api.routes.merchants import load_merchant, new_webhook_secret
from api.services.records import now
from api.services.webhook_urls import checked_webhook_url
from db.identity import ApiKey
from db.staff import MerchantUser
from db.tables import WebhookEvent

router = APIRouter(include_in_schema=False)  # HTML, not the JSON API's contract
_URL = TypeAdapter(HttpUrl)


async def _form(request: Request, holder: SessionHolder) -> dict[str, str]:
    await check_csrf(request, holder)
    return {key: str(value) for key, value in (await request.form()).items()}


def _merchant(holder: SessionHolder) -> str:
    assert holder.merchant_id is not None
    return holder.merchant_id


# -- API keys ------------------------------------------------------------------


@router.get("/dashboard/api-keys")
async def api_keys(request: Request, context: ContextDep, holder: StaffSession) -> Response:
    return await _keys_page(request, context, holder)


async def _keys_page(
    request: Request, context: AppContext, holder: SessionHolder, new_key: str = ""
) -> Response:
    def read() -> list[ApiKey]:
        with context.reads() as session:
            query = select(ApiKey).where(ApiKey.merchant_id == _merchant(holder))
            return list(session.exec(query.order_by(col(ApiKey.created_at))))

    keys = await asyncio.to_thread(read)
    values = {"keys": keys, "new_key": new_key}
    return render(request, "api_keys.html", values, holder=holder)


@router.post("/dashboard/api-keys")
async def create_key(request: Request, context: ContextDep, holder: StaffSession) -> Response:
    form = await _form(request, holder)

    def create() -> str:
        with context.sessions() as session, session.begin():
            return create_api_key(session, _merchant(holder), form.get("name", "")[:100], now()).key

    # Shown on this answer only (no redirect: the key must not sit in a URL or a cache).
    return await _keys_page(request, context, holder, new_key=await asyncio.to_thread(create))


@router.post("/dashboard/api-keys/{key_id}/revoke")
async def revoke_key(
    key_id: str, request: Request, context: ContextDep, holder: StaffSession
) -> Response:
    await _form(request, holder)

    def revoke() -> None:
        with context.sessions() as session, session.begin():
            key = session.get(ApiKey, key_id)
            if key is not None and key.merchant_id == _merchant(holder) and not key.revoked_at:
                key.revoked_at = now()

    await asyncio.to_thread(revoke)
    return RedirectResponse("/dashboard/api-keys", status_code=303)


# -- webhook -------------------------------------------------------------------


@router.get("/dashboard/webhooks")
async def webhooks(request: Request, context: ContextDep, holder: StaffSession) -> Response:
    return await _webhooks_page(request, context, holder)


async def _webhooks_page(
    request: Request,
    context: AppContext,
    holder: SessionHolder,
    **extra: Any,
) -> Response:
    def read() -> tuple[str | None, list[WebhookEvent]]:
        with context.reads() as session:
            merchant = load_merchant(session, _merchant(holder))
            query = select(WebhookEvent).where(WebhookEvent.merchant_id == merchant.id)
            events = session.exec(query.order_by(col(WebhookEvent.created_at).desc()).limit(50))
            return merchant.webhook_url, list(events)

    url, events = await asyncio.to_thread(read)
    values = {"url": url or "", "events": events, "error": "", "secret": "", **extra}
    status = 400 if values["error"] else 200
    return render(request, "webhooks.html", values, holder=holder, status_code=status)


@router.post("/dashboard/webhooks")
async def set_webhook(request: Request, context: ContextDep, holder: StaffSession) -> Response:
    form = await _form(request, holder)
    text = form.get("url", "").strip()
    try:
        url = (
            checked_webhook_url(_URL.validate_python(text), context.settings, "url")
            if text
            else None
        )
    except ValidationError:
        return await _webhooks_page(request, context, holder, error="Not a URL.")
    except ApiError as error:
        return await _webhooks_page(request, context, holder, error=error.message)

    def save() -> None:
        with context.sessions() as session, session.begin():
            merchant = load_merchant(session, _merchant(holder))
            merchant.webhook_url = url
            merchant.updated_at = now()

    await asyncio.to_thread(save)
    return RedirectResponse("/dashboard/webhooks", status_code=303)


@router.post("/dashboard/webhooks/secret")
async def rotate_secret(request: Request, context: ContextDep, holder: StaffSession) -> Response:
    await _form(request, holder)
    secret = new_webhook_secret()

    def save() -> None:
        with context.sessions() as session, session.begin():
            merchant = load_merchant(session, _merchant(holder))
            merchant.webhook_secret_ciphertext = context.secret_box.seal(secret)
            merchant.updated_at = now()

    await asyncio.to_thread(save)
    return await _webhooks_page(request, context, holder, secret=secret)


# -- team and password -----------------------------------------------------------


@router.get("/dashboard/team")
async def team(request: Request, context: ContextDep, holder: StaffSession) -> Response:
    return await _team_page(request, context, holder)


async def _team_page(
    request: Request, context: AppContext, holder: SessionHolder, error: str = "", done: str = ""
) -> Response:
    def read() -> list[MerchantUser]:
        with context.reads() as session:
            return merchant_staff(session, _merchant(holder))

    values = {"staff": await asyncio.to_thread(read), "error": error, "done": done}
    status = 400 if error else 200
    return render(request, "team.html", values, holder=holder, status_code=status)


@router.post("/dashboard/team")
async def add_member(request: Request, context: ContextDep, holder: StaffSession) -> Response:
    form = await _form(request, holder)
    if not holder.is_owner:
        return await _team_page(request, context, holder, error="Only the owner adds staff.")
    email, password = form.get("email", "").strip(), form.get("password", "")
    if "@" not in email or not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        error = f"An email, and a password of {MIN_LENGTH} to {MAX_LENGTH} characters."
        return await _team_page(request, context, holder, error=error)

    def create() -> None:
        with context.sessions() as session, session.begin():
            create_merchant_user(session, _merchant(holder), email, password, now())

    try:
        await asyncio.to_thread(create)
    except EmailTaken:
        return await _team_page(request, context, holder, error="That email has an account.")
    return RedirectResponse("/dashboard/team", status_code=303)


@router.post("/dashboard/password")
async def change_password(request: Request, context: ContextDep, holder: StaffSession) -> Response:
    """A new password ends every session of the person's, this one too: sign in again."""
    form = await _form(request, holder)
    current, new = form.get("current_password", ""), form.get("new_password", "")
    if not MIN_LENGTH <= len(new) <= MAX_LENGTH:
        error = f"A password of {MIN_LENGTH} to {MAX_LENGTH} characters."
        return await _team_page(request, context, holder, error=error)
    try:
        context.throttle.hit("staff-sign-in", holder.email, client_address(request))
    except TooManyRequests:
        return await _team_page(
            request, context, holder, error="Too many attempts; try again in a minute."
        )

    def change() -> bool:
        with context.sessions() as session, session.begin():
            user = session.get(MerchantUser, holder.subject_id)
            if user is None or not verify_password(user.password_hash, current):
                return False
            change_staff_password(session, user, new, now())
            return True

    if not await asyncio.to_thread(change):
        return await _team_page(request, context, holder, error="Wrong email or password.")
    response = RedirectResponse("/dashboard/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
