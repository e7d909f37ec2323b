"""The API keeps the contract its OpenAPI document states.

The document declares, per route, every status the route answers with, errors in
the one error shape and with an example, and no 422 (a validation error is a 400);
money-moving POSTs require an Idempotency-Key. Schemathesis then sends generated
requests, valid and not, to the running API as every role and holds each answer to
the document with all of its checks.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from sqlmodel import Session, select

from api.app import create_app
from api.openapi_errors import ERROR_STATUSES
from db.tables import Refund
from settings import Settings
from tests.conftest import System
from tests.identities import confirmation_code, outbox
from tests.support import (
    create_merchant,
    create_order,
    merchant_body,
    pay,
    post_refund,
    settings_from_env,
    wait_status,
)

# What each route answers besides its successes: the statuses its code can raise.
# Missing credentials 401, another role 403, a body over the limit 413 (every route
# that reads a body), Temporal away 503 (every route that calls it; below, the database).
AUTH_ANY = {401}
AUTH_SOME = {401, 403}
ANSWERS: dict[tuple[str, str], set[int]] = {
    ("POST", "/v1/auth/register"): {400, 413, 429},  # never 409: it tells nothing
    ("POST", "/v1/auth/confirm"): {400, 409, 413},
    ("POST", "/v1/auth/token"): {400, 401, 413, 429},
    ("GET", "/v1/me"): AUTH_SOME | {404},
    ("PATCH", "/v1/me"): AUTH_SOME | {400, 404, 413},
    ("POST", "/v1/me/password"): AUTH_SOME | {400, 404, 413, 429},
    ("GET", "/v1/me/notifications"): AUTH_SOME | {400},
    ("POST", "/v1/me/notifications/{notification_id}/read"): AUTH_SOME | {404},
    ("POST", "/v1/orders"): AUTH_ANY | {400, 409, 413, 503},
    ("GET", "/v1/orders"): AUTH_ANY | {400},
    ("GET", "/v1/orders/{order_id}"): AUTH_ANY | {404},
    ("DELETE", "/v1/orders/{order_id}"): AUTH_ANY | {400, 404, 409, 503},
    ("GET", "/v1/orders/{order_id}/payments"): AUTH_ANY | {404},
    ("GET", "/v1/orders/{order_id}/status-change"): AUTH_ANY | {400, 404, 429, 503},
    ("POST", "/v1/orders/{order_id}/modify"): AUTH_ANY | {400, 404, 409, 413, 503},
    ("POST", "/v1/orders/{order_id}/cancel"): AUTH_ANY | {400, 404, 409, 413, 503},
    ("POST", "/v1/orders/{order_id}/confirm-receipt"): AUTH_SOME | {404, 409, 503},
    ("POST", "/v1/orders/{order_id}/refunds"): AUTH_ANY | {400, 404, 409, 413, 503},
    ("GET", "/v1/orders/{order_id}/refunds"): AUTH_ANY | {404},
    ("GET", "/v1/refunds/{refund_id}"): AUTH_ANY | {404},
    ("POST", "/v1/merchants"): AUTH_SOME | {400, 413},
    ("GET", "/v1/merchants"): AUTH_SOME | {400},
    ("GET", "/v1/merchants/{merchant_id}"): AUTH_SOME | {404},
    ("PATCH", "/v1/merchants/{merchant_id}"): AUTH_SOME | {400, 404, 413},
    ("POST", "/v1/merchants/{merchant_id}/suspend"): AUTH_SOME | {404},
    ("POST", "/v1/merchants/{merchant_id}/reactivate"): AUTH_SOME | {404},
    ("POST", "/v1/merchants/{merchant_id}/api-keys"): AUTH_SOME | {400, 404, 413},
    ("GET", "/v1/merchants/{merchant_id}/api-keys"): AUTH_SOME | {404},
    ("DELETE", "/v1/merchants/{merchant_id}/api-keys/{key_id}"): AUTH_SOME | {404},
    ("PUT", "/v1/merchants/{merchant_id}/webhook"): AUTH_SOME | {400, 404, 413},
    ("POST", "/v1/merchants/{merchant_id}/webhook-secret"): AUTH_SOME | {404},
    ("POST", "/v1/merchants/{merchant_id}/users"): AUTH_SOME | {400, 404, 409, 413},
    ("POST", "/v1/coupons"): AUTH_SOME | {400, 409, 413},
    ("GET", "/v1/coupons"): AUTH_SOME | {400},
    ("GET", "/v1/coupons/{code}"): AUTH_ANY | {404},
    ("POST", "/v1/coupons/{code}/disable"): AUTH_SOME | {404},
    ("POST", "/v1/orders/{order_id}/review"): AUTH_SOME | {400, 404, 409, 413},
    ("GET", "/v1/merchants/{merchant_id}/reviews"): {400, 404},
    ("POST", "/v1/channels/{channel}/notify"): {400, 401, 404, 413, 503},
    ("POST", "/v1/payouts/notify"): {400, 401, 404, 413, 503},
    ("POST", "/v1/settlements/runs"): AUTH_SOME | {400, 413, 503},
    ("GET", "/v1/settlements/runs/{day}"): AUTH_SOME | {400, 404, 503},
    ("POST", "/v1/merchants/{merchant_id}/settlements"): AUTH_SOME | {400, 404, 413, 503},
    ("GET", "/v1/merchants/{merchant_id}/balances"): AUTH_SOME | {404},
    ("GET", "/v1/merchants/{merchant_id}/ledger"): AUTH_SOME | {400, 404},
    ("GET", "/v1/merchants/{merchant_id}/statements"): AUTH_SOME | {400, 404},
    ("GET", "/v1/statements/{statement_id}"): AUTH_SOME | {404},
    ("GET", "/v1/payouts/{payout_id}"): AUTH_SOME | {404},
    ("GET", "/v1/ledger/accounts"): AUTH_SOME | {400},
    ("GET", "/v1/ledger/accounts/{account_id}"): AUTH_SOME | {400, 404},
    ("GET", "/v1/ledger/trial-balance"): AUTH_SOME,
    ("POST", "/v1/reconciliation/runs"): AUTH_SOME | {400, 413, 503},
    ("GET", "/v1/reconciliation/runs/{channel}/{day}"): AUTH_SOME | {400, 404},
    ("GET", "/v1/reconciliation/exceptions"): AUTH_SOME | {400},
    ("POST", "/v1/reconciliation/exceptions/{exception_id}/resolve"): AUTH_SOME
    | {400, 404, 409, 413},
    ("GET", "/v1/fx/report"): AUTH_SOME | {400},
    ("GET", "/v1/merchants/{merchant_id}/fx-terms"): AUTH_SOME | {404},
    ("PUT", "/v1/merchants/{merchant_id}/fx-terms"): AUTH_SOME | {400, 404, 413},
    ("GET", "/healthz"): set(),
    ("GET", "/readyz"): {503},
}
# Every route but /healthz reads the database (the caller's credentials, at least), and
# answers 503 database_unavailable while it is away.
ANSWERS = {
    route: s | ({503} if route != ("GET", "/healthz") else set()) for route, s in ANSWERS.items()
}
# POSTs that move money: a retry without a key would move it twice.
KEYED = {
    ("POST", "/v1/orders"),
    ("POST", "/v1/orders/{order_id}/refunds"),
    ("POST", "/v1/reconciliation/runs"),
    ("POST", "/v1/reconciliation/exceptions/{exception_id}/resolve"),
}


@pytest.fixture(scope="module")
def document(channel_credentials: dict[str, str]) -> dict[str, Any]:
    return create_app(settings_from_env(channel_credentials)).openapi()


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


def test_every_route_declares_the_errors_it_answers_and_no_422(document: dict[str, Any]) -> None:
    operations = _operations(document)
    assert set(operations) == set(ANSWERS), "a route was added or removed: add it to ANSWERS"
    for route, operation in operations.items():
        declared = {int(status) for status in operation["responses"]}
        assert 422 not in declared, route
        assert declared & ERROR_STATUSES == ANSWERS[route], route
        for status in ANSWERS[route]:
            content = operation["responses"][str(status)]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorOut"}, route
            assert set(content["example"]["error"]) == {"type", "code", "message", "param"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_money_moving_posts_require_an_idempotency_key(document: dict[str, Any]) -> None:
    for route, operation in _operations(document).items():
        keys = [p for p in operation.get("parameters", []) if p["name"] == "Idempotency-Key"]
        if route in KEYED:
            assert [key["required"] for key in keys] == [True], route
        else:
            assert keys == [], route


async def test_a_refund_without_an_idempotency_key_is_refused_and_moves_nothing(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    for _ in range(3):  # a client's retries
        response = await api.post(f"/v1/orders/{order['id']}/refunds", json={"amount": 100})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "idempotency_key_missing"
        assert response.json()["error"]["param"] == "Idempotency-Key"
    with Session(system.engine) as session:
        assert session.exec(select(Refund).where(Refund.order_id == order["id"])).all() == []
    first = await post_refund(api, order["id"], "once", amount=100)
    again = await post_refund(api, order["id"], "once", amount=100)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["id"] == again.json()["id"]


async def test_a_405_names_every_method_the_path_serves(api: httpx.AsyncClient) -> None:
    response = await api.request("PUT", "/v1/orders/ord_nope")
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "DELETE, GET"
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_a_day_is_a_date_string_not_a_number(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/settlements/runs", json={"day": 0})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "day"


# -- schemathesis, as every role ------------------------------------------------

ROLES = ["anonymous", "buyer", "merchant", "operator"]


LONG = hypothesis.settings.get_current_profile_name() == "long"
# Per operation and role: a few in `make test` (about 10 s in all), many in `make test-long`,
# which also runs the coverage phase (every boundary and wrong type of every field).
EXAMPLES = 100 if LONG else 3
PHASES = ["examples", "coverage", "fuzzing"] if LONG else ["examples", "fuzzing"]


def _credentials(system: System, role: str) -> dict[str, str]:
    """The role's Authorization header, made through the API as its owner would."""
    if role == "anonymous":
        return {}
    operator = {"Authorization": f"Bearer {system.operator_token()}"}
    with httpx.Client(base_url=system.api_url, timeout=30) as client:
        if role == "operator":
            return operator
        if role == "merchant":
            made = client.post("/v1/merchants", json=merchant_body(), headers=operator)
            key = client.post(
                f"/v1/merchants/{made.json()['id']}/api-keys", json={}, headers=operator
            )
            return {"Authorization": f"Bearer {key.json()['key']}"}
        email, password = f"st-{secrets.token_hex(6)}@example.com", secrets.token_urlsafe(16)
        client.post("/v1/auth/register", json={"email": email, "password": password})
        code = confirmation_code(outbox(system, email)[-1])
        assert client.post("/v1/auth/confirm", json={"code": code}).status_code == 201
        tokens = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
        return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


# The document as the app makes it (no settings are read to make it); the running API
# must serve the same one. schemathesis.pytest.from_fixture would load it from the
# running API instead, but it does not run under pytest 9 (it sets Node._nodeid).
DOCUMENT = create_app(Settings.model_construct()).openapi()
contract = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=SchemathesisConfig.from_dict(
        {
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "phases": {
                phase: {"enabled": phase in PHASES}
                for phase in ("examples", "coverage", "fuzzing", "stateful")
            },
            "checks": {
                # A request the document's schemas allow may still break a rule they
                # cannot state (an unknown currency, a suspended merchant, a day not
                # yet begun): by our convention that is a 400 with its own code.
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"]
                },
            },
            "operations": [
                {
                    # /v1/payouts/notify is also GET /v1/payouts/{payout_id} with the id
                    # "notify" (a 404), so a 405 there truly allows GET and POST; the check
                    # reads the concrete path's entry alone.
                    "include-path": "/v1/payouts/notify",
                    "checks": {"allow_header_conformance": {"enabled": False}},
                }
            ],
        }
    ),
)


@pytest.fixture(scope="module", params=ROLES)
def role_headers(request: pytest.FixtureRequest, system: System) -> dict[str, str]:
    served = httpx.get(f"{system.api_url}/openapi.json", timeout=30).json()
    assert served == DOCUMENT
    return _credentials(system, request.param)


@pytest.mark.parametrize("system", ["sqlite"], indirect=True)  # no database in the contract
@contract.parametrize()
def test_the_api_keeps_its_documented_contract(
    case: Any, system: System, role_headers: dict[str, str]
) -> None:
    case.call_and_validate(base_url=system.api_url, headers=role_headers)
