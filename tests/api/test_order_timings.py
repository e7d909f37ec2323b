"""A merchant may lengthen an order's buyer-protection hold, never shorten it below the
platform's minimum, and the payment window stays within the platform's bounds.

The session's API lets tests ask for any hold (tests/conftest.py); these tests run a
second API in this process over the same database, Temporal and worker, with the
production minimums, as the API process's own settings.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pydantic
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from sqlmodel import Session, col, func, select

from api.app import create_app
from db.tables import IdempotencyKey, Order
from tests.conftest import System
from tests.support import create_merchant, order_body, settings_from_env

WEEK = 7 * 24 * 3600
PRODUCTION_BOUNDS = {
    "PAYSAGA_AUTO_COMPLETE_SECONDS": str(WEEK),
    "PAYSAGA_MIN_AUTO_COMPLETE_SECONDS": str(WEEK),
    "PAYSAGA_MIN_PAYMENT_TIMEOUT_SECONDS": "60",
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bounded_api(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """The system's API as an operator, with the platform's production bounds."""
    app = create_app(settings_from_env({**system.env, **PRODUCTION_BOUNDS}))
    headers = {"Authorization": f"Bearer {system.operator_token()}"}
    async with (
        LifespanManager(app) as running,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=running.app),
            base_url="http://api.test",
            headers=headers,
        ) as client,
    ):
        yield client


def _stored(system: System, merchant_id: str, keys: list[str]) -> tuple[int, int]:
    """The merchant's orders, and the idempotency keys of `keys` held (any caller's)."""
    with Session(system.engine) as session:
        orders = session.exec(
            select(func.count()).select_from(Order).where(Order.merchant_id == merchant_id)
        ).one()
        held = session.exec(
            select(func.count())
            .select_from(IdempotencyKey)
            .where(
                col(IdempotencyKey.key).in_([f"operator:{system.operator_id}:{k}" for k in keys])
            )
        ).one()
    return orders, held


@pytest.mark.parametrize(
    ("asked", "code", "param"),
    [
        ({"auto_complete_seconds": 0}, "auto_complete_too_short", "auto_complete_seconds"),
        ({"auto_complete_seconds": WEEK - 1}, "auto_complete_too_short", "auto_complete_seconds"),
        (
            {"auto_complete_seconds": 91 * 24 * 3600},
            "auto_complete_too_long",
            "auto_complete_seconds",
        ),
        ({"payment_timeout_seconds": 1}, "payment_timeout_too_short", "payment_timeout_seconds"),
        (
            {"payment_timeout_seconds": 24 * 3600 + 1},
            "payment_timeout_too_long",
            "payment_timeout_seconds",
        ),
    ],
)
async def test_an_order_outside_the_platform_bounds_is_refused_and_nothing_is_stored(
    system: System,
    bounded_api: httpx.AsyncClient,
    asked: dict[str, Any],
    code: str,
    param: str,
) -> None:
    merchant_id = await create_merchant(bounded_api)
    key = secrets.token_hex(8)

    response = await bounded_api.post(
        "/v1/orders", json=order_body(merchant_id, **asked), headers={"Idempotency-Key": key}
    )

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert _stored(system, merchant_id, [key]) == (0, 0)


async def test_a_merchant_may_lengthen_the_hold_never_shorten_it(
    system: System, bounded_api: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(bounded_api)

    async def place(hold: int) -> httpx.Response:
        body = order_body(merchant_id, auto_complete_seconds=hold, payment_timeout_seconds=60)
        return await bounded_api.post(
            "/v1/orders", json=body, headers={"Idempotency-Key": secrets.token_hex(8)}
        )

    shorter, longer = await place(WEEK - 1), await place(WEEK + 1)

    assert shorter.status_code == 400, shorter.text
    assert longer.status_code == 201, longer.text
    assert _stored(system, merchant_id, [])[0] == 1


def test_settings_refuse_a_default_hold_below_the_minimum(system: System) -> None:
    env = {**system.env, **PRODUCTION_BOUNDS, "PAYSAGA_AUTO_COMPLETE_SECONDS": "0"}
    with pytest.raises(pydantic.ValidationError, match="auto_complete_seconds is 0"):
        settings_from_env(env)
