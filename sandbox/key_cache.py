"""The sandbox's RSA keys, parsed once: settings hold them as text, and loading (and
checking) an RSA key costs milliseconds, too much to repeat on every request."""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.rsa2 import load_private_key, load_public_key


@lru_cache(maxsize=8)
def private_key(text: str) -> rsa.RSAPrivateKey:
    return load_private_key(text)


@lru_cache(maxsize=8)
def public_key(text: str) -> rsa.RSAPublicKey:
    return load_public_key(text)
