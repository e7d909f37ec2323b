"""While the database is away (down, restarting), the API answers 503 in its own shape
with Retry-After, as it does for Temporal: before, the caller's credential check raised
out of the route and the client got uvicorn's plain-text 500."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

import stack
from api.app import create_app
from api.auth.tokens import issue_access_token, utc_now
from tests.conftest import System
from tests.support import settings_from_env


async def test_a_database_that_is_away_is_a_503_to_retry(system: System) -> None:
    # A PostgreSQL URL where nothing listens: every connection is refused.
    nowhere = f"postgresql://postgres@127.0.0.1:{stack.free_port()}/paysaga"
    settings = settings_from_env({**system.env, "PAYSAGA_DATABASE_URL": nowhere})
    token = issue_access_token(settings, "usr_anyone", "operator", utc_now())
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            answer = await client.get("/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "database_unavailable"
    assert int(answer.headers["Retry-After"]) > 0
