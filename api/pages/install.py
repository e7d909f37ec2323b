"""The one call api.app makes: the pages' routers, their static files, and the answers
to "sign in first" and "this form has no valid token"."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.pages import (
    checkout,
    console,
    dashboard_money,
    dashboard_orders,
    dashboard_settings,
    sign_in,
)
from api.pages.render import render
from api.pages.sessions import CsrfRefused, SignInRequired

_SIGN_IN_PAGES = {"merchant": "/dashboard/sign-in", "operator": "/console/sign-in"}


def install_pages(app: FastAPI) -> None:
    modules = (sign_in, dashboard_orders, dashboard_money, dashboard_settings, console, checkout)
    for module in modules:
        app.include_router(module.router, include_in_schema=False)
    static = StaticFiles(directory=Path(__file__).parent / "static")
    app.mount("/static", static, name="static")

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, error: SignInRequired) -> Response:
        return RedirectResponse(_SIGN_IN_PAGES[error.kind], status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, error: CsrfRefused) -> Response:
        values = {"title": "The form expired; please try again.", "message": ""}
        return render(request, "message.html", values, status_code=403)
