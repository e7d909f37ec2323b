"""Encryption at rest for the few secrets we must read back: bank accounts, webhook secrets.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with the data key from
settings. A ciphertext that was altered, or made under another key, does not open.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr


class SecretBox:
    def __init__(self, key: SecretStr) -> None:
        self._fernet = Fernet(key.get_secret_value().encode())

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError("the ciphertext does not open under the data key") from None
