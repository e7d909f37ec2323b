"""SHA256withRSA (PKCS#1 v1.5 over SHA-256), the signature Alipay (RSA2) and WeChat Pay v3
both use, base64-encoded. Thin wrappers over `cryptography`.

Keys are read from PEM, or from the one-line base64 DER that Alipay's console hands
out (PKCS#8 for a private key, SubjectPublicKeyInfo for a public one), so a key can
live in one environment variable either way.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    data = text.strip()
    if data.startswith("-----"):
        key = serialization.load_pem_private_key(data.encode(), password=None)
    else:
        key = serialization.load_der_private_key(_der(data), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("an RSA private key is required")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    data = text.strip()
    if data.startswith("-----"):
        key = serialization.load_pem_public_key(data.encode())
    else:
        key = serialization.load_der_public_key(_der(data))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("an RSA public key is required")
    return key


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_text(key: rsa.RSAPrivateKey) -> str:
    """One-line base64 PKCS#8 DER: the form `load_private_key` reads without PEM armour."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(der).decode()


def public_key_text(key: rsa.RSAPublicKey) -> str:
    """One-line base64 SubjectPublicKeyInfo DER, as Alipay shows a public key."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sign(content: str, key: rsa.RSAPrivateKey) -> str:
    signature = key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def verify(content: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    """True only for a valid base64 signature of `content` by `key`."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, content.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _der(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("a key must be PEM or base64 DER") from None
