"""Driving the pages over plain HTTP: a browser's cookies by hand, forms with their tokens.

The session cookie is Secure, and httpx (like Python's cookie jar) sends no Secure
cookie over http://; a browser does to 127.0.0.1. So `Browser` keeps the cookies it is
given and sends them itself, exactly as a browser on this machine would.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from api.pages.sessions import SESSION_COOKIE
from tests.support import http_client

PASSWORD = "a long staff password"


@dataclass
class Browser:
    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)

    async def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        headers = {**options.pop("headers", {}), **({"cookie": cookie} if cookie else {})}
        async with http_client(self.base_url) as client:
            response = await client.request(method, path, headers=headers, **options)
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value in ("", '""') or "max-age=0" in header.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    async def get(self, path: str) -> httpx.Response:
        return await self.request("GET", path)

    async def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return await self.request("POST", path, data=data)


def form_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


async def sign_in(browser: Browser, area: str, email: str, password: str) -> httpx.Response:
    """Sign in at /dashboard or /console as a person would: the form, then its POST."""
    form = await browser.get(f"/{area}/sign-in")
    data = {"csrf_token": form_token(form.text), "email": email, "password": password}
    return await browser.post(f"/{area}/sign-in", data)


async def new_staff(api: httpx.AsyncClient, merchant_id: str) -> str:
    """An operator makes a staff member of the merchant (its owner if first); the email."""
    email = f"staff-{secrets.token_hex(6)}@shop.example.com"
    made = await api.post(
        f"/v1/merchants/{merchant_id}/users", json={"email": email, "password": PASSWORD}
    )
    assert made.status_code == 201, made.text
    return email


async def signed_in_staff(api: httpx.AsyncClient, base_url: str, merchant_id: str) -> Browser:
    browser = Browser(base_url)
    email = await new_staff(api, merchant_id)
    answer = await sign_in(browser, "dashboard", email, PASSWORD)
    assert answer.status_code == 303, answer.text
    assert SESSION_COOKIE in browser.cookies
    return browser
