"""Rendering a page: the template, the locale, and the headers every page carries.

Every page answers `Cache-Control: no-store` (they show accounts, orders and keys: no
browser or proxy may keep a copy), a Content-Security-Policy that allows our own
styles and scripts only, and no framing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.auth.web_sessions import SessionHolder
from api.pages.formats import money, when
from api.pages.i18n import LANG_COOKIE, choose_locale, translate

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

_ENVIRONMENT = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def locale_of(request: Request) -> str:
    return choose_locale(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def render(
    request: Request,
    template: str,
    values: dict[str, Any] | None = None,
    *,
    holder: SessionHolder | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    locale = locale_of(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    page = _ENVIRONMENT.get_template(template).render(
        {
            "t": lambda message: translate(locale, message),
            "locale": locale,
            "money": money,
            "when": when,
            "holder": holder,
            "csrf_token": holder.csrf_token if holder else "",
            "here": quote(here, safe="/?=&"),
            "path": request.url.path,
            **(values or {}),
        }
    )
    return HTMLResponse(page, status_code=status_code, headers=PAGE_HEADERS)
