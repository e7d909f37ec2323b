"""SHA256withRSA (PKCS#1 v1.5 over SHA-256), the signature Alipay (RSA2) and WeChat Pay v3
both use, base64-encoded; keys in PEM. Thin wrappers over `cryptography`.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("an RSA private key is required")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("an RSA public key is required")
    return key


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
