"""What every answer says about itself: browsers must not guess its type, no cache may
keep an answer about accounts or money, and no banner names the server software."""

from __future__ import annotations

import httpx

from tests.conftest import System
from tests.support import http_client


async def test_an_answer_with_account_data_is_never_stored_nor_sniffed(
    api: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    answers = [
        await api.get("/v1/me"),  # the operator's own profile
        await api.get("/v1/merchants"),
        await anonymous.get("/v1/me"),  # an error answer too
        await anonymous.get("/v1/orders/ord_nope"),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 401, 401]
    for answer in answers:
        assert answer.headers["Cache-Control"] == "no-store", answer.request.url
        assert answer.headers["X-Content-Type-Options"] == "nosniff", answer.request.url
        assert "server" not in answer.headers, answer.request.url


async def test_health_and_docs_are_not_sniffed_and_name_no_server(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    for path in ("/healthz", "/docs", "/openapi.json"):
        answer = await anonymous.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert "server" not in answer.headers, path
    worker_health = f"http://127.0.0.1:{system.env['PAYSAGA_WORKER_HEALTH_PORT']}"
    for url in (system.sandbox_url, worker_health):
        async with http_client(url) as client:
            answer = await client.get("/healthz")
        assert answer.status_code == 200, url
        assert "server" not in answer.headers, url
