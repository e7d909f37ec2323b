"""What the API refuses at the edge, before any route acts on it: a JSON object giving a
key twice, a rate sent as a JSON number, text that would show otherwise than it is
stored, and a body over the limit (refused before it is read whole).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError
from sqlmodel import Session, select

from api.body_guard import duplicate_key
from api.text import PlainText, ProseText
from db.tables import Merchant
from tests.conftest import System
from tests.support import create_merchant, merchant_body, settings_from_env

MiB = 1024 * 1024


def _merchant_named(system: System, name: str) -> Merchant | None:
    with Session(system.engine) as session:
        return session.exec(select(Merchant).where(Merchant.name == name)).first()


# -- a key given twice ------------------------------------------------------------


def test_duplicate_key_names_the_first_key_given_twice_at_any_depth() -> None:
    assert duplicate_key(b'{"lines": [{"sku": "a", "sku": "b"}]}') == "sku"
    assert duplicate_key(b'{"a": 1, "b": {"a": 2}}') is None
    assert duplicate_key(b"not json {") is None  # the route's own parser answers that


async def test_a_json_body_giving_a_key_twice_is_refused_and_nothing_is_stored(
    system: System, api: httpx.AsyncClient
) -> None:
    name = f"Twice {secrets.token_hex(4)}"
    fields = json.dumps(merchant_body(name=name, commission_rate="0.05"))[1:-1]
    content = '{"commission_rate": "0.9", ' + fields + "}"  # the last one would win

    response = await api.post(
        "/v1/merchants", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("duplicate_key", "commission_rate")
    assert _merchant_named(system, name) is None


# -- rates come as strings --------------------------------------------------------


@pytest.mark.parametrize("rate", [0.05, 0, 1])
async def test_a_commission_rate_as_a_json_number_is_refused_and_nothing_is_stored(
    system: System, api: httpx.AsyncClient, rate: float
) -> None:
    name = f"Float {secrets.token_hex(4)}"

    response = await api.post("/v1/merchants", json=merchant_body(name=name, commission_rate=rate))

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_decimal_string", "commission_rate")
    assert _merchant_named(system, name) is None


async def test_a_rate_update_as_a_json_number_changes_nothing(api: httpx.AsyncClient) -> None:
    merchant_id = await create_merchant(api, rate="0.05")

    response = await api.patch(f"/v1/merchants/{merchant_id}", json={"commission_rate": 0.07})

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_decimal_string"
    merchant = (await api.get(f"/v1/merchants/{merchant_id}")).json()
    assert merchant["commission_rate"] == "0.05"


async def test_a_percentage_off_as_a_json_number_is_refused(api: httpx.AsyncClient) -> None:
    code = f"F{secrets.token_hex(4)}"
    body = {"code": code, "kind": "percentage", "percent_off": 0.15}

    response = await api.post("/v1/coupons", json=body)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "percent_off"
    assert (await api.get(f"/v1/coupons/{code}")).status_code == 404


# -- text shows as it is stored ---------------------------------------------------

REFUSED = {
    "C1 NEL": "\u0085",
    "C1 CSI": "\u009b",
    "right-to-left override": "\u202e",
    "left-to-right embedding": "\u202a",
    "first-strong isolate": "\u2068",
    "pop directional isolate": "\u2069",
}


@pytest.mark.parametrize("character", REFUSED.values(), ids=REFUSED.keys())
def test_names_and_prose_refuse_c1_controls_and_bidi_overrides(character: str) -> None:
    for text in (PlainText, ProseText):
        with pytest.raises(ValidationError):
            TypeAdapter(text).validate_python(f"tea{character}cup")


async def test_a_merchant_name_that_reverses_on_screen_is_refused_a_marked_one_taken(
    system: System, api: httpx.AsyncClient
) -> None:
    reversing = f"Shop {secrets.token_hex(4)} \u202egpj.exe"  # shows as "exe.jpg"
    marked = f"\u05ea\u05d4 {secrets.token_hex(4)} 12\u200f"  # Hebrew, digits, a mark

    refused = await api.post("/v1/merchants", json=merchant_body(name=reversing))
    taken = await api.post("/v1/merchants", json=merchant_body(name=marked))

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "name"
    assert _merchant_named(system, reversing) is None
    assert taken.status_code == 201, taken.text
    assert taken.json()["name"] == marked


# -- a body over the limit --------------------------------------------------------

NOTIFY = "/v1/channels/card/notify"


async def _head(system: System, path: str, headers: dict[str, str]) -> Any:
    """A connection to the system's API with a POST's head sent."""
    address = urlsplit(system.api_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    # A small send buffer: what the server leaves unread waits here, not in our memory.
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    lines = [f"POST {path} HTTP/1.1", f"Host: {address.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    return reader, writer


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the answer, read as it comes: the server may reset the
    connection right after it (closing a socket with unread data sends a reset)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    lines = head.decode().split("\r\n")
    fields = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
    body = await reader.readexactly(int(fields["content-length"]))
    return int(lines[0].split()[1]), json.loads(body)


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    system: System,
) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(50 * MiB)}
    reader, writer = await _head(system, NOTIFY, headers)

    status, body = await _answer(reader)  # not a byte of the body was sent

    writer.close()
    assert status == 413
    assert body["error"]["code"] == "request_too_large"


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(system: System) -> None:
    limit = settings_from_env(system.env).max_request_body_bytes
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    reader, writer = await _head(system, NOTIFY, headers)
    answer = asyncio.ensure_future(_answer(reader))
    chunk = b" " * (64 * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    try:
        while sent < 50 * MiB and not answer.done():  # stop once the server has answered
            writer.write(frame)
            await writer.drain()
            sent += len(chunk)
            await asyncio.sleep(0)  # the answer's reader looks at what came in
        if not answer.done():
            writer.write(b"0\r\n\r\n")  # all of it sent: the server answers now
    except ConnectionError:
        pass  # the server answered and closed the connection
    status, body = await answer
    writer.close()

    assert status == 413
    assert body["error"]["code"] == "request_too_large"
    # Answered before all was sent: what the server did not read filled only the
    # sockets' buffers (about 6 MiB here; the kernel's ceiling is some tens of MiB).
    assert limit < sent < 50 * MiB


async def test_a_body_one_byte_over_the_limit_is_refused_one_at_it_handed_on(
    system: System,
) -> None:
    limit = settings_from_env(system.env).max_request_body_bytes
    at_limit = json.dumps({"padding": ""}).encode()
    at_limit = at_limit[:-2] + b" " * (limit - len(at_limit)) + at_limit[-2:]
    over_limit = at_limit[:-2] + b" " + at_limit[-2:]

    async with httpx.AsyncClient(base_url=system.api_url) as client:
        handed_on = await client.post(NOTIFY, content=at_limit)
        refused = await client.post(NOTIFY, content=over_limit)

    assert (len(at_limit), len(over_limit)) == (limit, limit + 1)
    assert handed_on.status_code == 401, handed_on.text  # the notification check's answer
    assert refused.status_code == 413, refused.text
