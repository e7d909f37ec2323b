"""RSA2 (SHA256withRSA, PKCS#1 v1.5) signatures over Alipay's canonical parameter string.

The string is the parameters, except the excluded ones, sorted by name (byte
order) and joined as `k=v&k=v`, values raw (not URL-encoded). What is excluded
differs by direction, as Alipay documents it: a request leaves out only `sign`;
an asynchronous notification leaves out `sign` and `sign_type`.

Whether a parameter with an empty value (`body=`) is in the string is where
Alipay's own SDKs differ, so each side here takes both and signs as Alipay does:

    request, signing      Java SDK `AlipaySignature.getSignContent`: empties
                          dropped (our adapter signs this way); python-alipay-sdk
                          `sign_data` keeps them. The gateway accepts either.
    notification, signing Alipay keeps every field it sends, empty ones too (the
                          sandbox signs so).
    notification, check   python-alipay-sdk `verify` and the Java SDK's
                          `getSignCheckContentV1` up to 4.x keep empties; the
                          current Java SDK drops them. We check the string with
                          them first, then without: an empty field means "absent"
                          to every reader of the fields, so either string
                          vouches for the same message.

The primitives (`channels.rsa2`) come from `cryptography`.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.rsa2 import sign, verify

REQUEST_EXCLUDED = frozenset({"sign"})
NOTIFY_EXCLUDED = frozenset({"sign", "sign_type"})


def canonical(
    params: Mapping[str, str], excluded: frozenset[str], *, keep_empty: bool = False
) -> str:
    pairs = sorted(
        (k, v) for k, v in params.items() if k not in excluded and (keep_empty or v != "")
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign_params(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    """A request's parameters with `sign_type=RSA2` and their `sign` added."""
    signed = {**params, "sign_type": "RSA2"}
    signed["sign"] = sign(canonical(signed, REQUEST_EXCLUDED), key)
    return signed


def sign_notification(fields: Mapping[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    """A notification's fields with `sign_type=RSA2` and `sign`, signed as Alipay signs."""
    signed = {**fields, "sign_type": "RSA2"}
    signed["sign"] = sign(canonical(signed, NOTIFY_EXCLUDED, keep_empty=True), key)
    return signed


def verify_request(params: Mapping[str, str], key: rsa.RSAPublicKey) -> bool:
    """A gateway request signed with RSA2 by the app's key, by either SDK's rule."""
    return _verify_either(params, REQUEST_EXCLUDED, key)


def verify_notification(params: Mapping[str, str], key: rsa.RSAPublicKey) -> bool:
    """An asynchronous notification (form fields) signed by Alipay's key with RSA2."""
    if params.get("sign_type", "RSA2") != "RSA2":
        return False
    return _verify_either(params, NOTIFY_EXCLUDED, key)


def _verify_either(
    params: Mapping[str, str], excluded: frozenset[str], key: rsa.RSAPublicKey
) -> bool:
    signature = params.get("sign")
    if not signature:
        return False
    if verify(canonical(params, excluded, keep_empty=True), signature, key):
        return True
    has_empty = any(v == "" for k, v in params.items() if k not in excluded)
    return has_empty and verify(canonical(params, excluded), signature, key)
