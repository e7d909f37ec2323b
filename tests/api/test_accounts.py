"""Accounts and access, through the running API: buyers register and sign in, tokens
rotate and can be forged by no one, operators onboard merchants who hold API keys, the
first operator comes from a command, sign-in is throttled, and no secret reaches a log.

Every secret this module uses goes into USED_SECRETS; the last test reads every log
of the system and finds none of them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from sqlmodel import Session, select

import stack
from db.identity import User
from db.secret_box import SecretBox
from db.tables import Merchant as MerchantRow
from tests.conftest import System
from tests.identities import (
    Buyer,
    Merchant,
    client_as,
    confirm,
    confirmation_code,
    create_api_key,
    merchant_with_key,
    new_email,
    new_password,
    outbox,
    register_buyer,
    sign_in,
)
from tests.support import http_client, merchant_body, settings_from_env

USED_SECRETS: list[str] = []


def remember(*values: str) -> None:
    USED_SECRETS.extend(values)


def remember_tokens(tokens: dict[str, Any]) -> None:
    remember(tokens["access_token"], tokens["refresh_token"])


async def new_buyer(system: System, anonymous: httpx.AsyncClient, **fields: str) -> Buyer:
    buyer = await register_buyer(system, anonymous, **fields)
    remember(buyer.password, buyer.access_token, buyer.refresh_token)
    return buyer


async def new_merchant(api: httpx.AsyncClient, **overrides: Any) -> Merchant:
    overrides.setdefault("bank_account_number", bank_account())
    merchant = await merchant_with_key(api, **overrides)
    remember(merchant.api_key)
    return merchant


def bank_account() -> str:
    """A fresh IBAN-shaped number, grouped in fours as people type them."""
    digits = "".join(secrets.choice("0123456789") for _ in range(16))
    number = f"GB{digits[:2]}PSGA{digits[2:]}"
    grouped = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    remember(grouped, number)
    return grouped


def assert_error(
    response: httpx.Response,
    status: int,
    error_type: str,
    code: str,
    param: str | None,
    *,
    not_echoing: tuple[str, ...] = (),
) -> None:
    """Our error shape, exactly, and none of the submitted secrets in it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "code", "message", "param"}, body
    error = body["error"]
    assert (error["type"], error["code"], error["param"]) == (error_type, code, param), error
    for secret in not_echoing:
        assert secret not in response.text


async def token_grant(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/v1/auth/token", data=form)


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    response = await token_grant(client, grant_type="refresh_token", refresh_token=refresh_token)
    if response.status_code == 200:
        remember_tokens(response.json())
    return response


# -- buyers: registration ------------------------------------------------------------


async def register(anonymous: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    remember(password)
    return await anonymous.post("/v1/auth/register", json={"email": email, "password": password})


async def test_a_buyer_registers_confirms_her_address_and_signs_in(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    local = f"Mixed.Case-{secrets.token_hex(4)}"
    password = new_password()
    remember(password)
    response = await anonymous.post(
        "/v1/auth/register",
        json={"email": f"{local}@Example.COM", "password": password, "display_name": "Mei"},
    )
    assert response.status_code == 202, response.text
    stored = f"{local.lower()}@example.com"
    assert response.json()["email"] == stored
    assert password not in response.text

    # No account until the address answers: her password does not sign in yet.
    early = await token_grant(anonymous, grant_type="password", username=stored, password=password)
    assert_error(early, 401, "authentication_error", "invalid_credentials", None)

    [message] = outbox(system, stored)
    assert message.subject == "Confirm your address" and password not in message.body
    code = confirmation_code(message)
    remember(code)
    confirmed = await confirm(anonymous, code)
    assert confirmed.status_code == 201, confirmed.text
    profile = confirmed.json()
    assert profile["email"] == stored
    assert (profile["role"], profile["display_name"]) == ("buyer", "Mei")
    assert set(profile) == {"id", "email", "role", "display_name", "created_at"}

    again = await confirm(anonymous, code)  # a code opens one account, once
    assert_error(again, 400, "invalid_request_error", "code_invalid", "code")
    unknown = await confirm(anonymous, secrets.token_urlsafe(32))
    assert_error(unknown, 400, "invalid_request_error", "code_invalid", "code")

    # She signs in with the email as she typed it, or as stored.
    for typed in (f"{local}@Example.COM", stored):
        tokens = await sign_in(anonymous, typed, password)
        remember_tokens(tokens)


async def test_registering_a_taken_address_answers_as_a_new_one_and_tells_its_owner(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    """Nobody learns from registering which addresses have accounts: the answer is the
    same, and what differs goes to the address, whose owner alone reads it."""
    buyer = await new_buyer(system, anonymous)
    stranger_password = new_password()
    fresh = await register(anonymous, new_email(), stranger_password)
    taken = [
        await register(anonymous, email, stranger_password)
        for email in (buyer.email, buyer.email.upper())
    ]
    for response in (fresh, *taken):
        assert response.status_code == 202, response.text
        assert stranger_password not in response.text
    assert {response.json()["email"] for response in taken} == {buyer.email}
    assert [set(r.json().items()) - set(fresh.json().items()) for r in taken] == [
        {("email", buyer.email)}
    ] * 2

    # Her address got a confirmation once, when she registered, then two warnings.
    kinds = [message.kind for message in outbox(system, buyer.email)]
    assert kinds == ["confirm_registration", "already_registered", "already_registered"]
    # Her account is as it was: her password signs in, the stranger's does not.
    remember_tokens(await sign_in(anonymous, buyer.email, buyer.password))
    refused = await token_grant(
        anonymous, grant_type="password", username=buyer.email, password=stranger_password
    )
    assert_error(refused, 401, "authentication_error", "invalid_credentials", None)
    with Session(system.engine) as session:
        assert len(session.exec(select(User).where(User.email == buyer.email)).all()) == 1


async def test_one_email_registered_many_times_at_once_makes_one_account(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    email, password = new_email(), new_password()
    remember(password)
    body = {"email": email, "password": password}
    answers = await asyncio.gather(
        *(anonymous.post("/v1/auth/register", json=body) for _ in range(4))
    )
    assert [response.status_code for response in answers] == [202] * 4
    codes = [confirmation_code(message) for message in outbox(system, email)]
    assert len(set(codes)) == 4
    remember(*codes)
    confirmed = await asyncio.gather(*(confirm(anonymous, code) for code in codes))
    assert sorted(response.status_code for response in confirmed) == [201, 409, 409, 409]
    for response in confirmed:
        if response.status_code == 409:
            assert_error(response, 409, "conflict_error", "email_taken", "code")
    with Session(system.engine) as session:
        assert len(session.exec(select(User).where(User.email == email)).all()) == 1


@pytest.mark.parametrize(
    ("email", "password", "code", "param"),
    [
        (None, "short-pw1", "invalid_string_too_short", "password"),
        (None, "p" * 129, "invalid_string_too_long", "password"),
        ("not-an-email", None, "invalid_value_error", "email"),
        ("two@@example.com", None, "invalid_value_error", "email"),
    ],
    ids=["short-password", "long-password", "no-at-sign", "two-at-signs"],
)
async def test_a_bad_registration_is_a_400_that_echoes_no_password_and_stores_nothing(
    anonymous: httpx.AsyncClient,
    system: System,
    email: str | None,
    password: str | None,
    code: str,
    param: str,
) -> None:
    password = password or new_password()
    remember(password)
    body = {"email": email or new_email(), "password": password}
    response = await anonymous.post("/v1/auth/register", json=body)
    assert_error(response, 400, "invalid_request_error", code, param, not_echoing=(password,))
    with Session(system.engine) as session:
        assert session.exec(select(User).where(User.email == body["email"])).first() is None
    assert outbox(system, body["email"]) == []


# -- buyers: signing in ----------------------------------------------------------------


async def test_a_buyer_signs_in_with_the_oauth2_password_form(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    buyer = await new_buyer(system, anonymous)
    response = await token_grant(
        anonymous, grant_type="password", username=buyer.email, password=buyer.password
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"  # RFC 6749 5.1
    tokens = response.json()
    remember_tokens(tokens)
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
    assert tokens["refresh_token"] != buyer.refresh_token

    settings = settings_from_env(system.env)
    claims = jwt.decode(
        tokens["access_token"],
        system.env["PAYSAGA_JWT_SECRET"],
        algorithms=["HS256"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    assert (claims["sub"], claims["role"]) == (buyer.id, "buyer")
    assert claims["exp"] - claims["iat"] == tokens["expires_in"]


async def test_a_wrong_password_and_an_unknown_email_are_refused_alike(
    anonymous: httpx.AsyncClient,
    system: System,
) -> None:
    buyer = await new_buyer(system, anonymous)
    wrong = new_password()
    remember(wrong)
    refusals = [
        await token_grant(anonymous, grant_type="password", username=email, password=password)
        for email, password in ((buyer.email, wrong), (new_email(), buyer.password))
    ]
    for response in refusals:
        assert_error(
            response,
            401,
            "authentication_error",
            "invalid_credentials",
            None,
            not_echoing=(wrong, buyer.password),
        )
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert refusals[0].content == refusals[1].content


async def test_a_token_request_must_name_a_known_grant(anonymous: httpx.AsyncClient) -> None:
    password = new_password()
    remember(password)
    unknown = await token_grant(
        anonymous, grant_type="client_credentials", username=new_email(), password=password
    )
    assert_error(
        unknown,
        400,
        "invalid_request_error",
        "unsupported_grant_type",
        "grant_type",
        not_echoing=(password,),
    )
    no_password = await token_grant(anonymous, grant_type="password", username=new_email())
    assert_error(no_password, 400, "invalid_request_error", "credentials_missing", None)


async def test_a_buyer_reads_and_renames_their_profile(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    buyer = await new_buyer(system, anonymous)
    async with client_as(system, buyer.headers) as as_buyer:
        read = await as_buyer.get("/v1/me")
        assert read.status_code == 200, read.text
        assert (read.json()["id"], read.json()["email"]) == (buyer.id, buyer.email)

        renamed = await as_buyer.patch("/v1/me", json={"display_name": "Lin"})
        assert renamed.status_code == 200 and renamed.json()["display_name"] == "Lin"
        assert (await as_buyer.get("/v1/me")).json()["display_name"] == "Lin"

        # The email is not a profile field: it identifies the account.
        moved = await as_buyer.patch("/v1/me", json={"display_name": "Lin", "email": new_email()})
        assert_error(moved, 400, "invalid_request_error", "invalid_extra_forbidden", "email")
        assert (await as_buyer.get("/v1/me")).json()["email"] == buyer.email

    nobody = await anonymous.get("/v1/me")
    assert_error(nobody, 401, "authentication_error", "credentials_missing", "Authorization")
    assert nobody.headers["WWW-Authenticate"] == "Bearer"


FREE_TEXT = ["register-name", "profile-name", "sign-in-username", "merchant-name", "key-name"]


@pytest.mark.parametrize("field", FREE_TEXT)
@pytest.mark.parametrize("character", ["\x00", "\x1b"], ids=["nul", "escape"])
async def test_a_control_character_in_free_text_is_a_400_on_every_database(
    anonymous: httpx.AsyncClient, api: httpx.AsyncClient, field: str, character: str, system: System
) -> None:
    """PostgreSQL refuses NUL in text: it must be refused before it gets that far."""
    text = f"Mei{character}Lin"
    password = new_password()
    remember(password)
    if field == "register-name":
        body = {"email": new_email(), "password": password, "display_name": text}
        response, param = await anonymous.post("/v1/auth/register", json=body), "display_name"
    elif field == "profile-name":
        buyer = await new_buyer(system, anonymous)
        response = await anonymous.patch(
            "/v1/me", json={"display_name": text}, headers=buyer.headers
        )
        param = "display_name"
    elif field == "sign-in-username":
        response = await token_grant(
            anonymous, grant_type="password", username=f"{text}@example.com", password=password
        )
        param = "username"
    elif field == "merchant-name":
        response, param = await api.post("/v1/merchants", json=merchant_body(name=text)), "name"
    else:
        merchant = await new_merchant(api)
        path = f"/v1/merchants/{merchant.id}/api-keys"
        response, param = await api.post(path, json={"name": text}), "name"
    assert_error(
        response,
        400,
        "invalid_request_error",
        "invalid_string_pattern_mismatch",
        param,
        not_echoing=(password,),
    )


# -- buyers: refresh tokens and password changes ------------------------------------


async def test_a_refresh_token_is_used_once_and_rotated(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    buyer = await new_buyer(system, anonymous)
    rotated = await refresh(anonymous, buyer.refresh_token)
    assert rotated.status_code == 200, rotated.text
    tokens = rotated.json()
    assert tokens["refresh_token"] != buyer.refresh_token
    assert rotated.headers["Cache-Control"] == "no-store"

    async with client_as(system, {"Authorization": f"Bearer {tokens['access_token']}"}) as fresh:
        assert (await fresh.get("/v1/me")).json()["id"] == buyer.id

    again = await refresh(anonymous, buyer.refresh_token)
    assert_error(again, 401, "authentication_error", "invalid_refresh_token", "refresh_token")
    assert again.headers["WWW-Authenticate"] == "Bearer"


async def test_a_spent_refresh_token_coming_back_revokes_its_whole_family(
    anonymous: httpx.AsyncClient,
    system: System,
) -> None:
    buyer = await new_buyer(system, anonymous)
    first = await refresh(anonymous, buyer.refresh_token)
    second = await refresh(anonymous, first.json()["refresh_token"])
    newest = second.json()["refresh_token"]

    # Someone replays the first token, spent long ago: it is refused, and so is the newest.
    replayed = await refresh(anonymous, buyer.refresh_token)
    assert_error(replayed, 401, "authentication_error", "invalid_refresh_token", "refresh_token")
    after = await refresh(anonymous, newest)
    assert_error(after, 401, "authentication_error", "invalid_refresh_token", "refresh_token")

    # Signing in again starts a new family.
    tokens = await sign_in(anonymous, buyer.email, buyer.password)
    remember_tokens(tokens)
    assert (await refresh(anonymous, tokens["refresh_token"])).status_code == 200


async def test_one_refresh_token_sent_twice_at_once_is_honoured_once(
    anonymous: httpx.AsyncClient,
    system: System,
) -> None:
    """Two tabs refresh with the same token: one wins, the other is a replay of a
    spent token, which revokes the family, so the winner signs in again too."""
    buyer = await new_buyer(system, anonymous)
    answers = await asyncio.gather(*(refresh(anonymous, buyer.refresh_token) for _ in range(3)))
    winners = [response for response in answers if response.status_code == 200]
    assert len(winners) == 1, [response.status_code for response in answers]
    for response in answers:
        if response is not winners[0]:
            assert_error(
                response, 401, "authentication_error", "invalid_refresh_token", "refresh_token"
            )
    newest = await refresh(anonymous, winners[0].json()["refresh_token"])
    assert_error(newest, 401, "authentication_error", "invalid_refresh_token", "refresh_token")


async def test_changing_the_password_signs_out_every_session_at_once(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    """Refresh tokens are revoked, and access tokens refused at once, not when they
    expire; the session that changed the password goes on with the tokens it got back."""
    buyer = await new_buyer(system, anonymous)
    laptop = await sign_in(anonymous, buyer.email, buyer.password)
    remember_tokens(laptop)
    new = new_password()
    wrong = new_password()
    remember(new, wrong)

    async with client_as(system, buyer.headers) as as_buyer:
        refused = await as_buyer.post(
            "/v1/me/password", json={"current_password": wrong, "new_password": new}
        )
        assert_error(
            refused,
            400,
            "invalid_request_error",
            "current_password_wrong",
            "current_password",
            not_echoing=(wrong, new),
        )
        too_short = await as_buyer.post(
            "/v1/me/password", json={"current_password": buyer.password, "new_password": "short"}
        )
        assert_error(
            too_short,
            400,
            "invalid_request_error",
            "invalid_string_too_short",
            "new_password",
            not_echoing=(buyer.password,),
        )
        changed = await as_buyer.post(
            "/v1/me/password", json={"current_password": buyer.password, "new_password": new}
        )
        assert changed.status_code == 200, changed.text
        assert changed.headers["Cache-Control"] == "no-store"
        tokens = changed.json()
        remember_tokens(tokens)
        assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}

    async with client_as(system, {"Authorization": f"Bearer {tokens['access_token']}"}) as now:
        assert (await now.get("/v1/me")).json()["id"] == buyer.id
    assert (await refresh(anonymous, tokens["refresh_token"])).status_code == 200

    # (A revoked refresh token presented again revokes the new ones too, as a replay does.)
    for access_token in (buyer.access_token, laptop["access_token"]):
        async with client_as(system, {"Authorization": f"Bearer {access_token}"}) as stale:
            answer = await stale.get("/v1/me")
        assert_error(answer, 401, "authentication_error", "invalid_credentials", "Authorization")
    for refresh_token in (buyer.refresh_token, laptop["refresh_token"]):
        revoked = await refresh(anonymous, refresh_token)
        assert_error(revoked, 401, "authentication_error", "invalid_refresh_token", "refresh_token")
    old = await token_grant(
        anonymous, grant_type="password", username=buyer.email, password=buyer.password
    )
    assert_error(old, 401, "authentication_error", "invalid_credentials", None)


async def test_guessing_the_current_password_is_throttled_as_sign_in_is(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    """Whoever holds a stolen access token guesses the password no faster here than at
    sign-in: both count against the account's sign-in throttle."""
    buyer = await new_buyer(system, anonymous)  # its sign-in is the first attempt
    guesses = [new_password() for _ in range(5)]
    remember(*guesses)
    async with client_as(system, buyer.headers) as as_buyer:
        answers = [
            await as_buyer.post(
                "/v1/me/password", json={"current_password": guess, "new_password": guess}
            )
            for guess in guesses
        ]
        assert [answer.status_code for answer in answers] == [400, 400, 400, 400, 429]
        assert_throttled(answers[-1], not_echoing=(guesses[-1],))
        right = await as_buyer.post(
            "/v1/me/password",
            json={"current_password": buyer.password, "new_password": new_password()},
        )
        assert_throttled(right, not_echoing=(buyer.password,))
    assert (await as_buyer_profile(system, buyer)).status_code == 200  # still signed in


async def as_buyer_profile(system: System, buyer: Buyer) -> httpx.Response:
    async with client_as(system, buyer.headers) as as_buyer:
        return await as_buyer.get("/v1/me")


async def test_passwords_are_kept_as_argon2id_at_the_configured_cost(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    """At the cost the API's settings name: OWASP's minimum by default
    (tests/api/test_passwords.py), lowered for the tests' speed."""
    buyer = await new_buyer(system, anonymous)
    with Session(system.engine) as session:
        user = session.get(User, buyer.id)
        assert user is not None
    match = re.fullmatch(
        r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[^$]+\$[^$]+", user.password_hash
    )
    assert match, user.password_hash
    memory, iterations, parallelism = map(int, match.groups())
    settings = settings_from_env(system.env)
    wanted = (settings.password_hash_memory_kib, settings.password_hash_time_cost, 1)
    assert (memory, iterations, parallelism) == wanted
    assert buyer.password not in user.password_hash


# -- access tokens: forgeries -------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _claims(system: System, subject: str, **changes: Any) -> dict[str, Any]:
    """The claims the API puts in a token, with `changes` (None removes a claim)."""
    settings = settings_from_env(system.env)
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "role": "buyer",
        "ver": 0,  # a new user's token version
        "iat": now,
        "exp": now + 300,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _sign(system: System, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, system.env["PAYSAGA_JWT_SECRET"], algorithm="HS256")


def forge(kind: str, system: System, subject: str) -> str:
    """An access token for `subject` with one defect; `genuine` has none."""
    secret = system.env["PAYSAGA_JWT_SECRET"]
    now = int(time.time())
    if kind == "genuine":
        return _sign(system, _claims(system, subject))
    if kind == "alg-none":
        return _unsigned({"alg": "none", "typ": "JWT"}, _claims(system, subject)) + "."
    if kind == "wrong-key":
        return jwt.encode(_claims(system, subject), secrets.token_bytes(32), algorithm="HS256")
    if kind == "expired":
        return _sign(system, _claims(system, subject, iat=now - 3600, exp=now - 60))
    if kind == "role-tampered":
        header, _claims_part, signature = _sign(system, _claims(system, subject)).split(".")
        tampered = _b64(json.dumps(_claims(system, subject, role="operator")).encode())
        return f"{header}.{tampered}.{signature}"
    if kind == "role-unknown":
        return _sign(system, _claims(system, subject, role="merchant"))
    if kind == "wrong-issuer":
        return _sign(system, _claims(system, subject, iss="someone-else"))
    if kind == "wrong-audience":
        return _sign(system, _claims(system, subject, aud="another-api"))
    if kind == "no-expiry":
        return _sign(system, _claims(system, subject, exp=None))
    if kind == "no-version":
        return _sign(system, _claims(system, subject, ver=None))
    if kind == "another-version":  # well signed, but not the version the user is at
        return _sign(system, _claims(system, subject, ver=1))
    if kind == "hs512":
        return jwt.encode(_claims(system, subject), secret, algorithm="HS512")
    if kind == "rs256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(_claims(system, subject), key, algorithm="RS256")
    if kind == "rs256-header-hmac-signed":  # the algorithm-confusion attack's shape
        signing_input = _unsigned({"alg": "RS256", "typ": "JWT"}, _claims(system, subject))
        mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"
    raise ValueError(kind)


FORGERIES = [
    "alg-none",
    "wrong-key",
    "expired",
    "role-tampered",
    "role-unknown",
    "wrong-issuer",
    "wrong-audience",
    "no-expiry",
    "no-version",
    "another-version",
    "hs512",
    "rs256",
    "rs256-header-hmac-signed",
]


async def test_a_token_made_as_the_api_makes_them_is_accepted(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    """The control for the forgeries below: only their one defect gets them refused."""
    buyer = await new_buyer(system, anonymous)
    token = forge("genuine", system, buyer.id)
    remember(token)
    async with client_as(system, {"Authorization": f"Bearer {token}"}) as client:
        response = await client.get("/v1/me")
    assert response.status_code == 200 and response.json()["id"] == buyer.id


@pytest.mark.parametrize("kind", FORGERIES)
async def test_a_forged_access_token_is_refused_before_any_data(
    anonymous: httpx.AsyncClient, system: System, kind: str
) -> None:
    buyer = await new_buyer(system, anonymous)
    token = forge(kind, system, buyer.id)
    remember(token)
    async with client_as(system, {"Authorization": f"Bearer {token}"}) as client:
        for path in ("/v1/me", "/v1/merchants", f"/v1/merchants/{buyer.id}"):
            response = await client.get(path)
            assert_error(
                response, 401, "authentication_error", "invalid_credentials", "Authorization"
            )
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert buyer.email not in response.text


# -- merchants: onboarding and API keys -------------------------------------------------


def _stored_merchant(system: System, merchant_id: str) -> MerchantRow:
    with Session(system.engine) as session:
        row = session.get(MerchantRow, merchant_id)
    assert row is not None
    return row


async def test_an_onboarded_merchants_bank_account_shows_as_last4_and_is_sealed_at_rest(
    api: httpx.AsyncClient, system: System
) -> None:
    grouped = bank_account()
    number = grouped.replace(" ", "")
    created = await api.post("/v1/merchants", json=merchant_body(bank_account_number=grouped))
    assert created.status_code == 201, created.text
    merchant_id = created.json()["id"]
    key = await create_api_key(api, merchant_id)
    remember(key)

    async with client_as(system, {"Authorization": f"Bearer {key}"}) as as_merchant:
        reads = [
            await api.get(f"/v1/merchants/{merchant_id}"),
            await api.get("/v1/merchants", params={"limit": 100}),
            await as_merchant.get(f"/v1/merchants/{merchant_id}"),
        ]
    assert [response.status_code for response in reads] == [200, 200, 200]
    for response in (created, *reads):
        assert number[:-4] not in response.text.replace(" ", "")
    for merchant in (created.json(), reads[0].json(), reads[2].json()):
        assert merchant["bank_account_last4"] == number[-4:]

    row = _stored_merchant(system, merchant_id)
    assert row.bank_account_ciphertext is not None
    stored = " ".join(str(value) for value in row.model_dump().values())
    windows = {number[i : i + 8] for i in range(len(number) - 7)}
    assert not any(window in stored for window in windows), "bank account digits at rest"
    box = SecretBox(SecretStr(system.env["PAYSAGA_DATA_KEY"]))
    assert box.open(row.bank_account_ciphertext) == number

    # A new account replaces the old one, sealed again.
    replacement = bank_account()
    updated = await api.patch(
        f"/v1/merchants/{merchant_id}", json={"bank_account_number": replacement}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["bank_account_last4"] == replacement.replace(" ", "")[-4:]
    row = _stored_merchant(system, merchant_id)
    assert row.bank_account_ciphertext is not None
    assert box.open(row.bank_account_ciphertext) == replacement.replace(" ", "")


async def test_api_keys_are_shown_once_and_several_work_at_once(
    api: httpx.AsyncClient, system: System
) -> None:
    """Keys are random: make enough that some secret parts hold a '_' and some do not."""
    merchant = await new_merchant(api)
    created: list[dict[str, Any]] = []
    while len(created) < 3 or {"_" in _secret_part(k["key"]) for k in created} != {True, False}:
        assert len(created) < 40, "40 keys and never both shapes: is the key format random?"
        response = await api.post(
            f"/v1/merchants/{merchant.id}/api-keys", json={"name": f"key {len(created)}"}
        )
        assert response.status_code == 201, response.text
        assert response.headers["Cache-Control"] == "no-store"
        created.append(response.json())
        remember(response.json()["key"])

    for key in created:
        assert key["key"].startswith(key["prefix"] + "_") and key["prefix"].startswith("psk_")
        assert key["merchant_id"] == merchant.id and key["revoked_at"] is None
    listing = await api.get(f"/v1/merchants/{merchant.id}/api-keys")
    assert listing.status_code == 200, listing.text
    prefixes = {k["prefix"] for k in created} | {_prefix_of(merchant.api_key)}
    assert {k["prefix"] for k in listing.json()} == prefixes
    assert all("key" not in k for k in listing.json())
    for key in [*created, {"key": merchant.api_key}]:
        assert _secret_part(key["key"]) not in listing.text
        async with client_as(system, {"Authorization": f"Bearer {key['key']}"}) as as_merchant:
            response = await as_merchant.get(f"/v1/merchants/{merchant.id}")
        assert response.status_code == 200, (key["key"], response.text)


def _prefix_of(key: str) -> str:
    """`psk_{12 hex}` of `psk_{12 hex}_{secret}`; the secret may itself hold '_'."""
    return "_".join(key.split("_", 2)[:2])


def _secret_part(key: str) -> str:
    return key[len(_prefix_of(key)) + 1 :]


async def test_a_revoked_key_is_refused_while_the_other_still_works(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant = await new_merchant(api)
    second = await api.post(f"/v1/merchants/{merchant.id}/api-keys", json={"name": "rollover"})
    remember(second.json()["key"])
    keys = {k["prefix"]: k for k in (await api.get(f"/v1/merchants/{merchant.id}/api-keys")).json()}
    old = keys[_prefix_of(merchant.api_key)]

    async with client_as(system, merchant.headers) as as_merchant:
        revoked = await as_merchant.delete(f"/v1/merchants/{merchant.id}/api-keys/{old['id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        refused = await as_merchant.get(f"/v1/merchants/{merchant.id}")
        assert_error(refused, 401, "authentication_error", "invalid_credentials", "Authorization")
        assert refused.headers["WWW-Authenticate"] == "Bearer"

    async with client_as(
        system, {"Authorization": f"Bearer {second.json()['key']}"}
    ) as with_second:
        assert (await with_second.get(f"/v1/merchants/{merchant.id}")).status_code == 200
        again = await with_second.delete(f"/v1/merchants/{merchant.id}/api-keys/{old['id']}")
        assert (
            again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
        )
    listed = (await api.get(f"/v1/merchants/{merchant.id}/api-keys")).json()
    assert {k["prefix"]: k["revoked_at"] is not None for k in listed} == {
        old["prefix"]: True,
        second.json()["prefix"]: False,
    }


async def test_a_key_with_a_known_prefix_and_a_wrong_secret_is_refused(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant = await new_merchant(api)
    prefix = _prefix_of(merchant.api_key)
    for guess in (f"{prefix}_{secrets.token_urlsafe(32)}", prefix, f"{prefix}_", "psk_"):
        async with client_as(system, {"Authorization": f"Bearer {guess}"}) as client:
            response = await client.get(f"/v1/merchants/{merchant.id}")
        assert_error(response, 401, "authentication_error", "invalid_credentials", "Authorization")


async def test_keys_are_made_only_by_their_merchant_or_an_operator(
    api: httpx.AsyncClient, anonymous: httpx.AsyncClient, system: System
) -> None:
    shop, other = await new_merchant(api), await new_merchant(api)
    buyer = await new_buyer(system, anonymous)
    path = f"/v1/merchants/{other.id}/api-keys"

    async with client_as(system, shop.headers) as as_shop:
        own = await as_shop.post(f"/v1/merchants/{shop.id}/api-keys", json={"name": "own"})
        assert own.status_code == 201, own.text
        remember(own.json()["key"])
        for response in (await as_shop.post(path, json={}), await as_shop.get(path)):
            assert_error(response, 404, "not_found_error", "merchant_not_found", "merchant_id")
        others_key = (await api.get(path)).json()[0]["id"]
        revoke = await as_shop.delete(f"{path}/{others_key}")
        assert_error(revoke, 404, "not_found_error", "merchant_not_found", "merchant_id")

    async with client_as(system, buyer.headers) as as_buyer:
        for response in (await as_buyer.post(path, json={}), await as_buyer.get(path)):
            assert_error(response, 403, "permission_error", "role_not_allowed", None)
    async with client_as(system, shop.headers) as as_shop:  # a merchant has no /v1/me
        profile = await as_shop.get("/v1/me")
        assert_error(profile, 403, "permission_error", "role_not_allowed", None)
    # Nothing was made or revoked for the other merchant.
    assert [k["revoked_at"] for k in (await api.get(path)).json()] == [None]


# -- the first operator ---------------------------------------------------------------------


def _create_operator(system: System, email: str, password: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "api.manage", "create-operator", "--email", email]
    return subprocess.run(
        [*command, "--password-stdin"],
        input=password + "\n",
        env={**os.environ, "PAYSAGA_DATABASE_URL": system.env["PAYSAGA_DATABASE_URL"]},
        cwd=stack.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_first_operator_is_made_by_command_and_signs_in(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    email, password = new_email("ops"), new_password()
    remember(password)
    made = await asyncio.to_thread(_create_operator, system, email, password)
    assert made.returncode == 0, made.stderr
    assert password not in made.stdout + made.stderr

    tokens = await sign_in(anonymous, email, password)
    remember_tokens(tokens)
    async with client_as(system, {"Authorization": f"Bearer {tokens['access_token']}"}) as ops:
        me = await ops.get("/v1/me")
        assert (me.json()["email"], me.json()["role"]) == (email, "operator")
        assert (await ops.get("/v1/merchants")).status_code == 200

    again = await asyncio.to_thread(_create_operator, system, email.upper(), new_password())
    assert again.returncode != 0
    assert "exists" in again.stderr
    assert password not in again.stdout + again.stderr


async def test_the_operator_command_refuses_a_short_password(system: System) -> None:
    email, password = new_email("ops"), "short"
    made = await asyncio.to_thread(_create_operator, system, email, password)
    assert made.returncode != 0 and "characters" in made.stderr
    with Session(system.engine) as session:
        assert session.exec(select(User).where(User.email == email)).first() is None


# -- rate limits ---------------------------------------------------------------------------


def assert_throttled(response: httpx.Response, *, not_echoing: tuple[str, ...] = ()) -> None:
    assert_error(response, 429, "rate_limit_error", "rate_limited", None, not_echoing=not_echoing)
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, retry_after


async def test_sign_in_is_throttled_per_account(
    anonymous: httpx.AsyncClient, system: System
) -> None:
    bystander = await new_buyer(system, anonymous)
    email, password = new_email(), new_password()
    assert (await register(anonymous, email, password)).status_code == 202
    [message] = outbox(system, email)
    assert (await confirm(anonymous, confirmation_code(message))).status_code == 201
    # Someone guesses four times; she signs in once in between.
    guesses = [new_password() for _ in range(4)]
    remember(*guesses)
    for guess in [*guesses[:2], password, *guesses[2:]]:
        response = await token_grant(
            anonymous, grant_type="password", username=email, password=guess
        )
        assert response.status_code == (200 if guess == password else 401), response.text
        if guess == password:
            remember_tokens(response.json())

    # The sixth attempt within the minute is refused even with the right password.
    sixth = await token_grant(
        anonymous, grant_type="password", username=email.upper(), password=password
    )
    assert_throttled(sixth, not_echoing=(password,))

    # Another account, from the same address, signs in as usual.
    remember_tokens(await sign_in(anonymous, bystander.email, bystander.password))


@pytest.fixture
def strict_api(system: System) -> Iterator[str]:
    """A second API process of this system that allows 3 attempts per address a minute."""
    port = stack.free_port()
    env = {**system.env, "PAYSAGA_API_PORT": str(port), "PAYSAGA_AUTH_RATE_PER_ADDRESS": "3/minute"}
    url = f"http://127.0.0.1:{port}"
    processes = stack.Stack(env=env)
    processes.start(
        "api",
        stack.uvicorn_command("api.app:create_app", "127.0.0.1", port),
        system.log_dir / "api-strict.log",
    )
    try:
        stack.wait_until(lambda: stack.http_ok(f"{url}/healthz"), "the strict API")
        yield url
    finally:
        processes.stop()


async def test_registration_is_throttled_per_address(strict_api: str) -> None:
    async with http_client(strict_api) as client:
        for attempt in range(4):
            password = new_password()
            remember(password)
            response = await client.post(
                "/v1/auth/register", json={"email": new_email(), "password": password}
            )
            if attempt < 3:
                assert response.status_code == 202, response.text
            else:
                assert_throttled(response, not_echoing=(password,))


# -- logs (keep this test last) ----------------------------------------------------------


def test_no_secret_this_module_used_reaches_a_log(system: System) -> None:
    logs = sorted(system.log_dir.glob("*.log"))
    assert any(log.name == "api.log" for log in logs), logs
    for log in logs:
        text = log.read_text(errors="replace")
        leaked = [secret for secret in USED_SECRETS if secret in text]
        assert leaked == [], f"{log.name} holds {len(leaked)} secret(s), e.g. {leaked[0][:6]}..."
