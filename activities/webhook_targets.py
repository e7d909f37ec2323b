"""Where one webhook attempt connects: the URL's name resolved once, every address checked,
and the request pinned to a checked address.

Checking a name and then letting the HTTP client resolve it again would lose to a DNS
answer that changes in between (DNS rebinding: public for the check, 127.0.0.1 for the
connection). So the request goes to the address itself, with the Host header and the
TLS server name (httpcore's `sni_hostname` extension) still the URL's name: the merchant's
server sees the request it expects, and its certificate is verified against that name.
Each pinned request asks for `Connection: close`, so that no pooled connection made for
one name (and verified for it) carries a request for another name on the same address.

Redirects are never followed (the worker's client does not, and `send` is told so): a
3xx is an answer that is not a 2xx, retried like any other.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from ipaddress import ip_address

import httpx

from domain.webhook_targets import IPAddress, address_refusal, host_refusal, url_refusal

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


class TargetRefused(Exception):
    """The URL, or an address its name resolves to, is no place for a webhook."""


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address `host` has now, in the resolver's order; raises OSError if none."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    return list(dict.fromkeys(addresses))


@dataclass(frozen=True)
class WebhookTargets:
    """The address policy of `domain.webhook_targets`, applied after DNS."""

    allow_private: bool = False
    resolve: Resolver = resolve_host

    async def addresses(self, url: str) -> list[IPAddress]:
        """The addresses a delivery to `url` may connect to, all of them checked.

        Raises TargetRefused if the URL or any address is refused (one bad answer among
        good ones refuses the name: a client could be sent to any of them), and OSError
        if the name does not resolve (that may mend: retried).
        """
        refusal = url_refusal(url, allow_private=self.allow_private)
        if refusal is not None:
            raise TargetRefused(refusal.message)
        parsed = httpx.URL(url)
        host = _ascii_host(parsed)
        reason = host_refusal(host, allow_private=self.allow_private)  # as httpx reads it
        if reason is not None:
            raise TargetRefused(f"the webhook URL's host {host} is {reason}")
        addresses = await self.resolve(host, parsed.port or _DEFAULT_PORTS[parsed.scheme])
        if not addresses:
            raise OSError(f"{host} has no address")
        for address in addresses:
            reason = address_refusal(address, allow_private=self.allow_private)
            if reason is not None:
                raise TargetRefused(f"{host} resolves to {address}, {reason}")
        return addresses


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _ascii_host(url: httpx.URL) -> str:
    """The host as DNS and TLS know it: IDNA-encoded, an IPv6 literal without brackets."""
    return url.raw_host.decode("ascii").strip("[]")


def pinned_request(
    http: httpx.AsyncClient,
    url: str,
    address: IPAddress,
    content: bytes,
    headers: Mapping[str, str],
) -> httpx.Request:
    """A POST of `content` to `url` that connects to `address` and names the URL's host."""
    named = httpx.URL(url)
    extensions = {"sni_hostname": _ascii_host(named)} if named.scheme == "https" else {}
    return http.build_request(
        "POST",
        named.copy_with(host=str(address)),
        content=content,
        headers={**headers, "Host": named.netloc.decode("ascii"), "Connection": "close"},
        extensions=extensions,
    )
