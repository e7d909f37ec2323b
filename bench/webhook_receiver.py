"""A merchant's webhook endpoint for the bench: answers every POST 200, after `delay_s`.

A bare asyncio HTTP/1.1 server in the bench's own process (keep-alive, Content-Length
bodies only, as our sender speaks): it costs the measured processes nothing, and a
slow answer (`delay_s`) shows whether any saga step waits on a webhook.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"


@dataclass
class WebhookReceiver:
    delay_s: float = 0.0
    received: int = 0
    _server: asyncio.Server | None = field(default=None, repr=False)

    async def start(self) -> str:
        """Listen on a free local port; the URL to give a merchant."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/webhooks"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(_content_length(head))
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                self.received += 1
                writer.write(_ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the sender closed the connection
        finally:
            writer.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0
