"""Where a merchant's webhook may go: a table of addresses and URLs, each with its verdict."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from domain.webhook_targets import address_refusal, url_refusal

REFUSED_ADDRESSES = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.10", "private"),
    ("100.64.0.1", "CGNAT"),
    ("169.254.1.1", "link-local"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("100.100.100.200", "metadata"),
    ("192.0.0.192", "metadata"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.7", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fd00:ec2::254", "metadata"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("::ffff:127.0.0.1", "loopback, as 127.0.0.1 inside IPv6"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:10.0.0.1", "private"),
    ("2002:7f00:1::1", "loopback, as 127.0.0.1 inside IPv6"),  # 6to4
    ("2002:a9fe:a9fe::", "metadata"),  # 6to4 of 169.254.169.254
    ("64:ff9b::7f00:1", "loopback, as 127.0.0.1 inside IPv6"),  # NAT64
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b:1::1", "NAT64"),
    ("::7f00:1", "IPv4-compatible"),
    ("2001::1", "Teredo"),
]

PUBLIC_ADDRESSES = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",  # just past 172.16/12
    "100.128.0.1",  # just past 100.64/10
    "2606:4700:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:8.8.8.8",  # a mapped public address reaches that address
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "kind"), REFUSED_ADDRESSES)
def test_an_address_inside_any_network_of_ours_is_refused_and_named(
    address: str, kind: str
) -> None:
    reason = address_refusal(ip_address(address))
    assert reason is not None and kind in reason


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_a_public_address_is_a_place_for_a_webhook(address: str) -> None:
    assert address_refusal(ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("169.254.169.254", True),
        ("fd00:ec2::254", True),
        ("::ffff:169.254.169.254", True),
    ],
)
def test_the_development_allowance_lets_private_receivers_through_but_never_metadata(
    address: str, refused: bool
) -> None:
    assert (address_refusal(ip_address(address), allow_private=True) is not None) is refused


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://hooks.shop.example.com/paysaga", "webhook_url_not_https"),
        ("ftp://hooks.shop.example.com/", "webhook_url_invalid"),
        ("https:///no-host", "webhook_url_invalid"),
        ("https://127.0.0.1:8100/control/payments/ord_1/pay", "webhook_url_not_public"),
        ("https://[::1]/hook", "webhook_url_not_public"),
        ("https://[::ffff:7f00:1]/hook", "webhook_url_not_public"),
        ("https://169.254.169.254/latest/meta-data/", "webhook_url_not_public"),
        ("https://[fd00:ec2::254]/", "webhook_url_not_public"),
        ("https://localhost/hook", "webhook_url_not_public"),
        ("https://LOCALHOST./hook", "webhook_url_not_public"),
        ("https://api.localhost/hook", "webhook_url_not_public"),
        ("https://metadata.google.internal/computeMetadata/v1/", "webhook_url_not_public"),
        ("https://printer.local/", "webhook_url_not_public"),
        ("https://sandbox:8100/control", "webhook_url_not_public"),  # a compose service name
    ],
)
def test_a_url_is_refused_by_what_it_says_with_a_code_for_the_api(url: str, code: str) -> None:
    refusal = url_refusal(url, allow_private=False)
    assert refusal is not None and refusal.code == code, refusal


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.shop.example.com/paysaga",
        "https://93.184.216.34:8443/hook?x=1",
        "https://[2606:4700:4700::1111]/hook",
        "https://xn--bcher-kva.example/hook",
    ],
)
def test_a_public_https_url_is_accepted(url: str) -> None:
    assert url_refusal(url, allow_private=False) is None


def test_the_allowance_takes_http_and_local_receivers_but_not_metadata() -> None:
    assert url_refusal("http://127.0.0.1:8100/inbox/x", allow_private=True) is None
    assert url_refusal("http://sandbox:8100/inbox/x", allow_private=True) is None
    refusal = url_refusal("http://169.254.169.254/latest/meta-data/", allow_private=True)
    assert refusal is not None and refusal.code == "webhook_url_not_public"
