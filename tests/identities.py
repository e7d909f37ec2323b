"""Who calls the API in tests: buyers who registered and signed in, merchants with a key.

Everything goes through the real endpoints, as a buyer's app or a shop's server would:

    buyer = await register_buyer(system, anonymous)    # register, confirm, sign in
    shop = await merchant_with_key(api)                # operator onboards, makes a key
    async with client_as(system, buyer.headers) as as_buyer:
        await as_buyer.get("/v1/me")
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlmodel import Session, col, select

from db.identity import OutboundMessage
from tests.conftest import System
from tests.support import http_client, merchant_body


@dataclass(frozen=True)
class Buyer:
    """A registered, signed-in buyer; `email` as the API stores it (lower-cased)."""

    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass(frozen=True)
class Merchant:
    """An onboarded merchant and one live API key of its own."""

    id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def new_email(kind: str = "buyer") -> str:
    return f"{kind}-{secrets.token_hex(6)}@example.com"


def new_password() -> str:
    return f"pw-{secrets.token_urlsafe(18)}"


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    """The OAuth2 password grant (form-encoded); the token response, which must be a 200."""
    response = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def outbox(system: System, email: str) -> list[OutboundMessage]:
    """The messages queued for `email` (as stored: lower-cased), oldest first."""
    with Session(system.engine) as session:
        query = select(OutboundMessage).where(OutboundMessage.recipient == email)
        return list(session.exec(query.order_by(col(OutboundMessage.created_at))).all())


def confirmation_code(message: OutboundMessage) -> str:
    """The code a confirmation message carries, as its reader would copy it."""
    assert message.kind == "confirm_registration", message.kind
    found = re.search(r"^ {4}(\S+)$", message.body, re.M)
    assert found, message.body
    return found.group(1)


async def confirm(anonymous: httpx.AsyncClient, code: str) -> httpx.Response:
    return await anonymous.post("/v1/auth/confirm", json={"code": code})


async def register_buyer(
    system: System,
    anonymous: httpx.AsyncClient,
    email: str | None = None,
    password: str | None = None,
) -> Buyer:
    """Register a buyer (a fresh email and password unless given), confirm the address
    with the code the outbox holds for it, and sign them in."""
    email = email or new_email()
    password = password or new_password()
    response = await anonymous.post(
        "/v1/auth/register", json={"email": email, "password": password}
    )
    assert response.status_code == 202, response.text
    stored = response.json()["email"]
    confirmed = await confirm(anonymous, confirmation_code(outbox(system, stored)[-1]))
    assert confirmed.status_code == 201, confirmed.text
    profile = confirmed.json()
    tokens = await sign_in(anonymous, email, password)
    return Buyer(
        id=profile["id"],
        email=profile["email"],
        password=password,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )


async def create_api_key(client: httpx.AsyncClient, merchant_id: str, name: str = "") -> str:
    """A new API key of the merchant, as its one-time showing returns it."""
    response = await client.post(f"/v1/merchants/{merchant_id}/api-keys", json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def merchant_with_key(api: httpx.AsyncClient, **merchant_overrides: Any) -> Merchant:
    """An operator (`api`) onboards a merchant and makes it an API key."""
    response = await api.post("/v1/merchants", json=merchant_body(**merchant_overrides))
    assert response.status_code == 201, response.text
    merchant_id = str(response.json()["id"])
    return Merchant(id=merchant_id, api_key=await create_api_key(api, merchant_id, "test"))


@asynccontextmanager
async def client_as(system: System, headers: Mapping[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the system's API that sends `headers` (a buyer's or merchant's) on every call."""
    async with http_client(system.api_url, headers=dict(headers)) as client:
        yield client
