"""The channels' client (httpx's API over aiohttp's connections): what a failed call
becomes, through `channels.http.send`, with real sockets on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from channels.errors import ChannelUnavailable
from channels.http import channel_client, send

TIMEOUT_S = 0.3


@pytest_asyncio.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that takes connections and the request, and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_channel_that_never_answers_is_unavailable_by_timeout(silent_port: int) -> None:
    async with channel_client(TIMEOUT_S) as client:
        began = time.monotonic()
        with pytest.raises(ChannelUnavailable) as error:
            await send(client, "query", "POST", f"http://127.0.0.1:{silent_port}/", data={"a": 1})
    assert error.value.code == "timeout" and error.value.retryable
    assert time.monotonic() - began < 10 * TIMEOUT_S  # bounded by the timeout, not hung


async def test_a_refused_connection_is_unavailable_as_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: refused
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        async with channel_client(TIMEOUT_S) as client:
            with pytest.raises(ChannelUnavailable) as error:
                await send(client, "query", "GET", url, headers={"Authorization": "secret"})
    assert error.value.code == "unreachable" and error.value.retryable
    assert "secret" not in str(error.value)


async def test_a_connection_closed_without_an_answer_is_unavailable_as_unreachable() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request's head, then no answer
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with channel_client(TIMEOUT_S * 10) as client:
            with pytest.raises(ChannelUnavailable) as error:
                await send(client, "create", "POST", url, content=b"body")
    finally:
        server.close()
        await server.wait_closed()
    assert error.value.code == "unreachable" and error.value.retryable
