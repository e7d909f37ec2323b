"""Who may call what: every route of the app, over every role and the objects' owners.

The cases are generated from the app's own route table. Each route must declare
its access (`api.auth.caller`: an `Access` of roles, or `PUBLIC`); a route that
declares none fails here, and so does a new route this file has no sample for.
From the declaration and the objects' owners each call's expected class follows:

    anonymous on a non-public route                 401
    a role the route does not serve                 403
    buyer B / merchant B on A's order, merchant...  404 (as if it did not exist)
    buyer A / merchant A / operator                 anything but 401, 403, 404
    a public route                                  the same answer for every caller

The denied calls all run first, at once, and must change nothing that the owner sees;
then the owners read at once and write one by one. Each party has one client.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import text

from api.app import create_app
from api.auth.caller import Access, Public, Role
from tests.conftest import System
from tests.identities import client_as, merchant_with_key, register_buyer
from tests.support import (
    http_client,
    merchant_body,
    merchant_payout,
    order_body,
    pay,
    post_refund,
    settings_from_env,
    wait_for,
    wait_status,
)

# Path parameters that name an object with an owner (a buyer and/or a merchant).
OWNED_PARAMS = {
    "order_id",
    "merchant_id",
    "refund_id",
    "statement_id",
    "payout_id",
    "key_id",
    "notification_id",
}
# Routes with such a parameter that are open to every signed-in caller on purpose.
UNSCOPED: set[tuple[str, str]] = set()
PAST_DAY = "2020-01-01"


@dataclass
class Party:
    name: str
    role: Role | None  # None: anonymous
    headers: dict[str, str]
    password: str | None = None


@dataclass
class World:
    """The parties, and the objects buyer A owns at merchant A."""

    parties: dict[str, Party]
    params: dict[str, str]


def declared_access(route: APIRoute) -> list[Access | Public]:
    """The access rules among a route's dependencies (its router's included)."""
    found: list[Access | Public] = []
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, Access | Public):
            found.append(dependant.call)
        pending.extend(dependant.dependencies)
    return found


def app_routes(system: System) -> list[tuple[str, str, Access | Public]]:
    app = create_app(settings_from_env(system.env))
    cases = []
    for context in iter_route_contexts(app.routes):  # included routers flattened
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue  # the OpenAPI document and the docs pages
        if not route.include_in_schema:
            continue  # api.pages: cookie sessions, tested in tests/pages/test_page_security.py
        path = str(context.path)
        access = declared_access(route)
        assert len(access) == 1, f"{path} declares {len(access)} access rules, not one"
        for method in sorted(context.methods or ()):
            cases.append((method, path, access[0]))
    return cases


# -- sample requests ------------------------------------------------------------

Sample = Callable[[World, Party], dict[str, Any]]


def _json(body: Callable[[World, Party], Any]) -> Sample:
    return lambda world, party: {"json": body(world, party)}


def _fresh_email(_world: World, _party: Party) -> dict[str, Any]:
    email = f"matrix-{secrets.token_hex(6)}@buyers.example.com"
    return {"json": {"email": email, "password": secrets.token_urlsafe(12)}}


def _wrong_sign_in(_world: World, _party: Party) -> dict[str, Any]:
    email = f"nobody-{secrets.token_hex(6)}@buyers.example.com"
    return {"data": {"grant_type": "password", "username": email, "password": "x" * 12}}


def _new_order(world: World, _party: Party) -> dict[str, Any]:
    return {
        "json": order_body(world.params["merchant_id"]),
        "headers": {"Idempotency-Key": secrets.token_hex(8)},
    }


def _password_change(_world: World, _party: Party) -> dict[str, Any]:
    # A wrong current password (400): the right one would end every session of buyer A,
    # this client's too, and the writes after it would answer 401.
    password = "not-the-password"
    return {"json": {"current_password": password, "new_password": password}}


def _new_coupon(_world: World, _party: Party) -> dict[str, Any]:
    code = f"M{secrets.token_hex(4)}"
    return {"json": {"code": code, "kind": "fixed", "amount_off": 100, "currency": "CNY"}}


SAMPLES: dict[tuple[str, str], Sample] = {
    ("POST", "/v1/auth/register"): _fresh_email,
    ("POST", "/v1/auth/confirm"): _json(lambda w, p: {"code": "not-a-code-we-sent"}),
    ("POST", "/v1/auth/token"): _wrong_sign_in,
    ("PATCH", "/v1/me"): _json(lambda w, p: {"display_name": "Matrix"}),
    ("POST", "/v1/me/password"): _password_change,
    ("POST", "/v1/orders"): _new_order,
    ("POST", "/v1/orders/{order_id}/refunds"): lambda w, p: {
        "json": {"amount": 1},
        "headers": {"Idempotency-Key": secrets.token_hex(8)},
    },
    # A status the order is not in: answered at once (a wait would be a second at most).
    ("GET", "/v1/orders/{order_id}/status-change"): lambda w, p: {
        "params": {"from": "created", "timeout_seconds": "1"}
    },
    ("POST", "/v1/orders/{order_id}/modify"): _json(
        lambda w, p: {"lines": order_body("")["lines"]}
    ),
    ("POST", "/v1/merchants"): _json(lambda w, p: merchant_body()),
    ("PATCH", "/v1/merchants/{merchant_id}"): _json(lambda w, p: {"name": "Renamed shop"}),
    ("POST", "/v1/merchants/{merchant_id}/api-keys"): _json(lambda w, p: {"name": "matrix"}),
    ("POST", "/v1/merchants/{merchant_id}/users"): _json(
        lambda w, p: {"email": f"staff-{secrets.token_hex(6)}@example.com", "password": "x" * 12}
    ),
    ("POST", "/v1/coupons"): _new_coupon,
    ("PUT", "/v1/merchants/{merchant_id}/webhook"): _json(lambda w, p: {"url": None}),
    ("POST", "/v1/orders/{order_id}/review"): _json(lambda w, p: {"rating": 5, "text": "Good tea"}),
    ("POST", "/v1/settlements/runs"): _json(lambda w, p: {"day": PAST_DAY}),
    ("POST", "/v1/merchants/{merchant_id}/settlements"): _json(lambda w, p: {"day": "2020-01-02"}),
    ("POST", "/v1/channels/{channel}/notify"): lambda w, p: {"content": b"not a notification"},
    ("POST", "/v1/payouts/notify"): lambda w, p: {"content": b"not a notification"},
    ("POST", "/v1/reconciliation/runs"): lambda w, p: {
        "json": {"channel": "alipay", "day": PAST_DAY},
        "headers": {"Idempotency-Key": secrets.token_hex(8)},
    },
    ("POST", "/v1/reconciliation/exceptions/{exception_id}/resolve"): lambda w, p: {
        "json": {"reason": "checked by the access matrix"},
        "headers": {"Idempotency-Key": secrets.token_hex(8)},
    },
    ("PUT", "/v1/merchants/{merchant_id}/fx-terms"): _json(lambda w, p: {"fx_markup_bps": 0}),
}
# Routes that take no body (or an optional one) need no sample.
NO_BODY = {"GET", "DELETE"}
OPTIONAL_BODY = {
    ("POST", "/v1/orders/{order_id}/cancel"),
    ("POST", "/v1/orders/{order_id}/confirm-receipt"),
    ("POST", "/v1/merchants/{merchant_id}/suspend"),
    ("POST", "/v1/merchants/{merchant_id}/reactivate"),
    ("POST", "/v1/coupons/{code}/disable"),
    ("POST", "/v1/merchants/{merchant_id}/webhook-secret"),
    ("POST", "/v1/me/notifications/{notification_id}/read"),
}


def request_for(method: str, path: str, world: World, party: Party) -> dict[str, Any]:
    if (method, path) in SAMPLES:
        return SAMPLES[(method, path)](world, party)
    assert method in NO_BODY or (method, path) in OPTIONAL_BODY, (
        f"{method} {path} is new: add a sample request to SAMPLES in this file"
    )
    return {}


def url_for(path: str, params: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in params, f"{path}: no object for path parameter {name}"
        return params[name]

    return re.sub(r"{(\w+)}", fill, path)


# -- expectations ---------------------------------------------------------------


def expected(method: str, path: str, access: Access | Public, party: Party) -> str:
    if isinstance(access, Public):
        return "same"
    if party.role is None:
        return "401"
    if party.role not in access.roles:
        return "403"
    owned = OWNED_PARAMS & set(re.findall(r"{(\w+)}", path))
    if owned and (method, path) not in UNSCOPED and party.name.endswith(" B"):
        return "404"
    return "allowed"


def check(outcome: httpx.Response, expectation: str, what: str) -> None:
    status = outcome.status_code
    if expectation == "allowed":
        assert status not in (401, 403, 404), f"{what}: {status} {outcome.text}"
        assert status < 500, f"{what}: {status} {outcome.text}"
        return
    assert status == int(expectation), f"{what}: {status} {outcome.text}"
    error = outcome.json()["error"]
    assert set(error) == {"type", "code", "message", "param"}, what


# -- the world ------------------------------------------------------------------


async def _buyer(system: System, anonymous: httpx.AsyncClient, name: str) -> Party:
    buyer = await register_buyer(system, anonymous)
    return Party(name, Role.BUYER, buyer.headers, buyer.password)


async def _merchant(api: httpx.AsyncClient, name: str) -> tuple[Party, str]:
    merchant = await merchant_with_key(api)
    return Party(name, Role.MERCHANT, merchant.headers), merchant.id


async def _paid_payout(system: System, merchant_id: str) -> tuple[str, str]:
    """Merchant A's statement and payout, once the bank has paid it (nothing moves after)."""
    payout = await merchant_payout(system.engine, merchant_id)
    return payout.statement_id, payout.id


async def _refund_done(api: httpx.AsyncClient, refund_id: str) -> None:
    async def probe() -> str:
        return str((await api.get(f"/v1/refunds/{refund_id}")).json()["status"])

    await wait_for(probe, lambda status: status == "succeeded", "the refund")


_RECONCILED = f"alipay:{PAST_DAY}"
_OPEN_EXCEPTION = "rex_matrix"


def _reconciliation_with_an_open_exception(system: System) -> None:
    """A finished run of a past day and an open exception of it, for the routes that read
    a run and resolve an exception (written as the run's activities write them)."""
    now = datetime.now(UTC)
    with system.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO reconciliation_runs (id, channel, day, status, bill_lines,"
                " exception_count, auto_resolved_count, started_at) VALUES"
                " (:run, 'alipay', :day, 'running', 0, 1, 0, :now)"
            ),
            {"run": _RECONCILED, "day": PAST_DAY, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO reconciliation_exceptions (id, run_id, channel, day, type,"
                " reference, detail, status, created_at) VALUES (:id, :run, 'alipay', :day,"
                " 'missing_there', 'ord_matrix', '', 'open', :now)"
            ),
            {"id": _OPEN_EXCEPTION, "run": _RECONCILED, "day": PAST_DAY, "now": now},
        )


async def build_world(
    system: System,
    api: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
) -> World:
    buyer_a = await _buyer(system, anonymous, "buyer A")
    buyer_b = await _buyer(system, anonymous, "buyer B")
    (merchant_a, merchant_id), (merchant_b, _) = (
        await _merchant(api, "merchant A"),
        await _merchant(api, "merchant B"),
    )
    operator = Party("operator", Role.OPERATOR, dict(api.headers))
    _reconciliation_with_an_open_exception(system)
    parties = {
        p.name: p
        for p in (Party("anonymous", None, {}), buyer_b, merchant_b, buyer_a, merchant_a, operator)
    }
    async with client_as(system, buyer_a.headers) as as_a:
        response = await as_a.post(
            "/v1/orders",
            json=order_body(merchant_id),
            headers={"Idempotency-Key": secrets.token_hex(8)},
        )
        assert response.status_code == 201, response.text
    order_id = response.json()["id"]
    await pay(sandbox, order_id)
    await wait_status(api, order_id, "completed")
    async with client_as(system, buyer_a.headers) as as_a:
        notes = (await as_a.get("/v1/me/notifications")).json()["data"]
    assert notes, "buyer A was told of the payment"
    refund = await post_refund(api, order_id, amount=100)
    assert refund.status_code == 201, refund.text
    spare_key = await api.post(f"/v1/merchants/{merchant_id}/api-keys", json={"name": "spare"})
    today = datetime.now(UTC).date().isoformat()
    settled = await api.post(f"/v1/merchants/{merchant_id}/settlements", json={"day": today})
    assert settled.status_code == 202, settled.text
    run = await api.post("/v1/settlements/runs", json={"day": PAST_DAY})
    assert run.status_code == 202, run.text
    statement_id, payout_id = await _paid_payout(system, merchant_id)
    await _refund_done(api, refund.json()["id"])
    coupon = _new_coupon(World({}, {}), operator)["json"]
    assert (await api.post("/v1/coupons", json=coupon)).status_code == 201
    accounts = (await api.get("/v1/ledger/accounts")).json()["data"]
    params = {
        "order_id": order_id,
        "merchant_id": merchant_id,
        "refund_id": refund.json()["id"],
        "statement_id": statement_id,
        "payout_id": payout_id,
        "key_id": spare_key.json()["id"],
        "notification_id": notes[0]["id"],
        "code": coupon["code"],
        "day": PAST_DAY,
        "account_id": accounts[0]["id"],
        "channel": "alipay",
        "exception_id": _OPEN_EXCEPTION,
    }
    return World(parties, params)


# -- the test -------------------------------------------------------------------


Call = tuple[str, str, Access | Public, Party]
# Calls in flight at once: enough to keep the API busy, few enough not to time out.
CONCURRENT_CALLS = 16


async def _answer_all(
    calls: list[Call], world: World, clients: dict[str, httpx.AsyncClient], together: bool
) -> list[tuple[Call, httpx.Response]]:
    """Each call through its party's own client: all at once (bounded), or one by one."""
    limit = asyncio.Semaphore(CONCURRENT_CALLS if together else 1)

    async def answer(call: Call) -> tuple[Call, httpx.Response]:
        method, path, _, party = call
        request = request_for(method, path, world, party)
        headers = request.pop("headers", {})
        async with limit:
            url = url_for(path, world.params)
            client = clients[party.name]
            return call, await client.request(method, url, headers=headers, **request)

    if together:
        return list(await asyncio.gather(*(answer(call) for call in calls)))
    return [await answer(call) for call in calls]


async def _owner_view(api: httpx.AsyncClient, world: World) -> list[Any]:
    order_id, merchant_id = world.params["order_id"], world.params["merchant_id"]
    paths = [
        f"/v1/orders/{order_id}",
        f"/v1/orders/{order_id}/refunds",
        f"/v1/merchants/{merchant_id}",
        f"/v1/merchants/{merchant_id}/api-keys",
        f"/v1/merchants/{merchant_id}/balances",
    ]
    return [(await api.get(path)).json() for path in paths]


async def test_every_route_answers_each_role_as_declared(
    system: System,
    api: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
) -> None:
    routes = app_routes(system)
    world = await build_world(system, api, anonymous, sandbox)
    before = await _owner_view(api, world)
    parties = world.parties
    denied = [
        (*route, parties[n]) for route in routes for n in ("anonymous", "buyer B", "merchant B")
    ]
    allowed = [
        (*route, parties[n]) for route in routes for n in ("buyer A", "merchant A", "operator")
    ]
    # The denied calls change nothing, so they all go at once; then the owners' reads at
    # once, and their writes one by one in the route table's order (each may change what
    # the next one finds: a suspension, a cancelled order).
    phases = [
        (denied, True),
        ([call for call in allowed if call[0] == "GET"], True),
        ([call for call in allowed if call[0] != "GET"], False),
    ]
    public_answers: dict[tuple[str, str], set[int]] = {}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(http_client(system.api_url, headers=p.headers))
            for name, p in parties.items()
        }
        for calls, together in phases:
            for (method, path, access, party), outcome in await _answer_all(
                calls, world, clients, together
            ):
                expectation = expected(method, path, access, party)
                what = f"{party.name}: {method} {path}"
                if expectation == "same":
                    public_answers.setdefault((method, path), set()).add(outcome.status_code)
                    assert outcome.status_code < 500, f"{what}: {outcome.text}"
                else:
                    check(outcome, expectation, what)
            if calls is denied:
                assert await _owner_view(api, world) == before, "a refused call changed something"
    differing = {route: codes for route, codes in public_answers.items() if len(codes) > 1}
    assert differing == {}, f"public routes answered callers differently: {differing}"
    assert len(routes) >= 30  # the route table was read, not an empty list
    await _lists_hold_only_ones_own(system, world)


async def _lists_hold_only_ones_own(system: System, world: World) -> None:
    order_id = world.params["order_id"]
    for name, sees in (("buyer A", True), ("merchant A", True), ("buyer B", False)):
        party = world.parties[name]
        async with client_as(system, party.headers) as client:
            listed = [order["id"] for order in (await client.get("/v1/orders")).json()["data"]]
        assert (order_id in listed) is sees, f"{name} lists {listed}"
    async with client_as(system, world.parties["merchant B"].headers) as client:
        assert (await client.get("/v1/orders")).json()["data"] == []
