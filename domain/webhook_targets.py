"""Where a merchant webhook may go: public https endpoints, never our own network.

A webhook URL is chosen by a merchant, and our worker POSTs to it from inside our
network: without this policy a merchant could make us call the sandbox's control
API, a database's HTTP port or the cloud's metadata service (SSRF). The policy is
applied twice: to the URL when a merchant sets it (`url_refusal`: its scheme and its
host as written), and to every address its name resolves to when an event is
delivered (`address_refusal`; `activities.webhook_targets` resolves and then connects
to the address it checked, so a DNS answer that changes in between cannot win).

The address table is written out here rather than read from `ipaddress.is_global`:
the standard library's lists change between Python patch releases, and they call
multicast, 6to4 (2002::/16) and 192.0.0.192 (Oracle's metadata service) global.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

IPAddress = IPv4Address | IPv6Address

# Cloud metadata services, named first so a refusal says what the address is.
_METADATA = {
    IPv4Address("169.254.169.254"): "cloud metadata (AWS, GCP, Azure, ...)",
    IPv4Address("169.254.170.2"): "cloud metadata (AWS ECS)",
    IPv4Address("100.100.100.200"): "cloud metadata (Alibaba)",
    IPv4Address("192.0.0.192"): "cloud metadata (Oracle)",
    IPv6Address("fd00:ec2::254"): "cloud metadata (AWS)",
}

_IPV4_REFUSED = [
    (IPv4Network("0.0.0.0/8"), "unspecified (this network)"),
    (IPv4Network("10.0.0.0/8"), "private (RFC 1918)"),
    (IPv4Network("100.64.0.0/10"), "shared address space (CGNAT)"),
    (IPv4Network("127.0.0.0/8"), "loopback"),
    (IPv4Network("169.254.0.0/16"), "link-local"),
    (IPv4Network("172.16.0.0/12"), "private (RFC 1918)"),
    (IPv4Network("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    (IPv4Network("192.0.2.0/24"), "reserved (documentation)"),
    (IPv4Network("192.88.99.0/24"), "reserved (6to4 relay anycast)"),
    (IPv4Network("192.168.0.0/16"), "private (RFC 1918)"),
    (IPv4Network("198.18.0.0/15"), "reserved (benchmarking)"),
    (IPv4Network("198.51.100.0/24"), "reserved (documentation)"),
    (IPv4Network("203.0.113.0/24"), "reserved (documentation)"),
    (IPv4Network("224.0.0.0/4"), "multicast"),
    (IPv4Network("240.0.0.0/4"), "reserved (and broadcast)"),
]

_IPV6_REFUSED = [
    (IPv6Network("::/128"), "unspecified"),
    (IPv6Network("::1/128"), "loopback"),
    (IPv6Network("::/96"), "reserved (IPv4-compatible)"),
    (IPv6Network("64:ff9b:1::/48"), "private (local-use NAT64)"),
    (IPv6Network("100::/64"), "reserved (discard-only)"),
    (IPv6Network("2001::/23"), "reserved (IETF protocol assignments, Teredo)"),
    (IPv6Network("2001:db8::/32"), "reserved (documentation)"),
    (IPv6Network("fc00::/7"), "private (unique local)"),
    (IPv6Network("fe80::/10"), "link-local"),
    (IPv6Network("fec0::/10"), "site-local (deprecated)"),
    (IPv6Network("ff00::/8"), "multicast"),
]

_NAT64 = IPv6Network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are IPv4

# Names that only ever mean a machine on our side (RFC 6761, RFC 6762, cloud DNS).
_INTERNAL_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


@dataclass(frozen=True)
class Refusal:
    """Why a webhook URL is refused: an API error `code` and a message for the merchant."""

    code: str
    message: str


def address_refusal(address: IPAddress, *, allow_private: bool = False) -> str | None:
    """What kind of address this is, if no webhook may go to it; None for a public one.

    An IPv6 address that carries an IPv4 one (mapped ::ffff:a.b.c.d, 6to4, NAT64) is
    judged by the IPv4 address it reaches. `allow_private` (development and tests) lets
    everything through but the cloud's metadata services: no receiver lives there.
    """
    embedded = _embedded_ipv4(address) if isinstance(address, IPv6Address) else None
    if embedded is not None:
        reason = address_refusal(embedded, allow_private=allow_private)
        return f"{reason}, as {embedded} inside IPv6" if reason else None
    if address in _METADATA:
        return _METADATA[address]
    if allow_private:
        return None
    table = _IPV4_REFUSED if isinstance(address, IPv4Address) else _IPV6_REFUSED
    for network, reason in table:
        if address in network:
            return reason
    if not address.is_global:  # anything the standard library adds later
        return "not publicly routable"
    return None


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def url_refusal(url: str, *, allow_private: bool) -> Refusal | None:
    """Why `url` may not be a webhook endpoint, judged by what it says (no DNS); or None.

    Only https, and a host that is a public address or a dotted public name. With
    `allow_private` (development and tests) http and any host but a metadata address pass.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        return Refusal("webhook_url_invalid", "the webhook URL must be an http(s) URL with a host")
    if parts.scheme != "https" and not allow_private:
        return Refusal("webhook_url_not_https", "the webhook URL must use https")
    reason = host_refusal(host, allow_private=allow_private)
    if reason is not None:
        return Refusal("webhook_url_not_public", f"the webhook URL's host {host} is {reason}")
    return None


def host_refusal(host: str, *, allow_private: bool = False) -> str | None:
    """Why a URL's host (a name or an address literal) is not a public endpoint; or None."""
    try:
        address = ip_address(host)
    except ValueError:
        address = None  # a name
    if address is not None:
        return address_refusal(address, allow_private=allow_private)
    name = host.lower().rstrip(".")
    if allow_private:
        return None
    if name == "localhost" or name.endswith(_INTERNAL_NAME_SUFFIXES):
        return "an internal name"
    if "." not in name:
        return "a single-label name (only resolvable inside a network)"
    return None
