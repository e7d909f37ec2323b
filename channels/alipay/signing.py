"""RSA2 (SHA256withRSA, PKCS#1 v1.5) signatures over Alipay's canonical parameter string.

The string is every parameter with a non-empty value, except the excluded ones,
sorted by name (byte order) and joined as `k=v&k=v`, values raw (not URL-encoded).
What is excluded differs by direction, as Alipay documents it: a request leaves
out only `sign`; an asynchronous notification leaves out `sign` and `sign_type`.
The primitives (`channels.rsa2`) come from `cryptography`.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.rsa2 import sign, verify

REQUEST_EXCLUDED = frozenset({"sign"})
NOTIFY_EXCLUDED = frozenset({"sign", "sign_type"})


def canonical(params: Mapping[str, str], excluded: frozenset[str]) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k not in excluded and v != "")
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign_params(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    """A request's parameters with `sign_type=RSA2` and their `sign` added."""
    signed = {**params, "sign_type": "RSA2"}
    signed["sign"] = sign(canonical(signed, REQUEST_EXCLUDED), key)
    return signed


def verify_notification(params: Mapping[str, str], key: rsa.RSAPublicKey) -> bool:
    """An asynchronous notification (form fields) signed by Alipay's key with RSA2."""
    signature = params.get("sign")
    if not signature or params.get("sign_type", "RSA2") != "RSA2":
        return False
    return verify(canonical(params, NOTIFY_EXCLUDED), signature, key)
